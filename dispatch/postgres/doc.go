// Package postgres is Lifeline's durable record in PostgreSQL, for
// deployments where several lifelined servers share one database. It
// implements dispatch.Store, dispatch.Users, dispatch.Auditor and
// telemetry.History on a pgx connection pool.
//
// What the database guarantees, so that no server has to trust another:
// a unit holds at most one active assignment (a partial unique index;
// the loser of a race gets a conflict), a call reported twice by the same
// source is one incident (a unique index), and the audit log is one hash
// chain (appenders serialise on an advisory lock; a trigger refuses
// updates and deletes). Position history is written by a group commit
// with COPY, many AppendFixes calls to one transaction, each acknowledged
// only once its rows are committed; it is partitioned by week of fix time
// so that retention drops whole partitions (MaintainPartitions). The
// schema is migrated with goose from SQL embedded in the binary, in Open,
// one server at a time. See docs/STORAGE.md.
//
// Package pgtest gives tests of any package a fresh database on the test server.
package postgres
