// Package sqlite is Lifeline's embedded durable record: one SQLite file
// (lifeline.db under the data directory) holding incidents, assignments,
// unit status transitions, users, unit credentials, sessions, the
// hash-chained audit log and the position and video history. It
// implements dispatch.Store, dispatch.Users, dispatch.Auditor and
// telemetry.History, and is what lifelined uses when no PostgreSQL is
// configured: one server, no other moving parts.
//
// The file runs in WAL mode with synchronous=FULL, so a commit is on disk
// when it returns. Every write goes through one connection (SQLite has one
// writer at a time anyway; BEGIN IMMEDIATE makes that explicit), reads
// through a small pool of read-only connections. Position fixes are
// written by a group commit: concurrent AppendFixes calls share one
// transaction, and each returns once its rows are committed. The schema
// is migrated with goose from SQL files embedded in the binary, in Open.
// See docs/STORAGE.md.
package sqlite
