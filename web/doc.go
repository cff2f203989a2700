// Package web is Lifeline's HTTP face: the JSON API of contract v1, the
// /api/v1/live websocket that pushes the live picture to consoles, the
// health and metrics endpoints, and the dispatcher console itself, whose
// static files are embedded in the binary so that control rooms on closed
// networks need nothing from outside.
//
// Access is denied by default: everything under /api/ but signing in
// (POST /api/v1/sessions) needs a session, sent as a bearer token or, from
// the console, as the HttpOnly session cookie; a cookie-authenticated
// request that changes something must come from the console's own origin.
// What a principal may see and do is decided by the dispatch engine, so
// that every interface applies the same rules. Health, metrics and the
// console's files stay open (the console must load to show its sign-in
// form).
//
// It speaks only domain types: dispatch errors become HTTP statuses in
// exactly one function, Server.Error, which also counts refused requests
// in lifeline_http_rejected_total{reason}.
package web
