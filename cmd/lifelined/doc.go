// Command lifelined is the Lifeline server: the embedded MQTT broker (or
// a client of an external one), telemetry ingest, the dispatch engine, the
// durable record (SQLite under --data-dir, or PostgreSQL), the HTTP API,
// the live websocket and the console.
//
// With no flags it runs on its embedded default: broker on :1883, console
// and API on http://localhost:8080/, record under ./data, the built-in
// Fushun County demo area. --demo adds a simulated fleet and calls.
//
// Operator commands work on the same data:
//
//	lifelined audit verify            check the audit log's hash chain
//	lifelined admin reset-password    issue a new password for admin
//
// Main wires everything from a Config; Run starts it and Close stops it,
// and the tests run that same Main on free ports.
package main
