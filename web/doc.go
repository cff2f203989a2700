// Package web is Lifeline's HTTP face: the JSON API of contract v1, the
// /api/v1/live websocket that pushes the live picture to consoles, the
// health and metrics endpoints, and the dispatcher console itself, whose
// static files are embedded in the binary so that control rooms on closed
// networks need nothing from outside.
//
// It speaks only domain types: dispatch errors become HTTP statuses in
// exactly one function, Error.
package web
