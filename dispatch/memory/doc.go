// Package memory implements dispatch.Store and dispatch.Tracks in process
// memory. It keeps nothing across restarts; it is the reference the
// durable stores are measured against by the shared conformance suite.
package memory
