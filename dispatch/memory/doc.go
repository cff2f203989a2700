// Package memory implements the record in process memory: dispatch.Store,
// dispatch.Users, dispatch.Auditor and telemetry.History. It keeps nothing
// across restarts; it is the reference the durable stores are measured
// against by the shared conformance suite (dispatch/storetest).
package memory
