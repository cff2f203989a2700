-- Lifeline's embedded record. Times are INTEGER microseconds since the
-- Unix epoch, UTC (what PostgreSQL keeps); a zero time is NULL.

-- +goose Up
CREATE TABLE incidents (
	id           TEXT PRIMARY KEY,
	external_id  TEXT NOT NULL DEFAULT '',
	source       TEXT NOT NULL DEFAULT '',
	lat          REAL NOT NULL,
	lon          REAL NOT NULL,
	address      TEXT NOT NULL,
	priority     INTEGER NOT NULL,
	category     TEXT NOT NULL,
	jurisdiction TEXT NOT NULL,
	zone         TEXT NOT NULL,
	radius_m     REAL NOT NULL,
	status       TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	closed_at    INTEGER
);
-- A call reported twice by the same source is one incident.
CREATE UNIQUE INDEX incidents_external ON incidents (source, external_id) WHERE external_id <> '';
CREATE INDEX incidents_created ON incidents (created_at DESC, id);
CREATE INDEX incidents_status_created ON incidents (status, created_at DESC, id);

CREATE TABLE assignments (
	id          TEXT PRIMARY KEY,
	incident    TEXT NOT NULL REFERENCES incidents (id),
	unit        TEXT NOT NULL,
	status      TEXT NOT NULL,
	assigned_by TEXT NOT NULL,
	reason      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
-- One active assignment per unit: the store, not the caller, makes sure.
CREATE UNIQUE INDEX assignments_one_active_per_unit ON assignments (unit) WHERE status IN ('offered', 'accepted');
CREATE INDEX assignments_incident ON assignments (incident, created_at);

CREATE TABLE transitions (
	n           INTEGER PRIMARY KEY, -- order of appending
	unit        TEXT NOT NULL,
	incident    TEXT NOT NULL,
	from_status TEXT NOT NULL,
	to_status   TEXT NOT NULL,
	at          INTEGER NOT NULL,
	source      TEXT NOT NULL
);
CREATE INDEX transitions_incident ON transitions (incident, n);
CREATE INDEX transitions_unit ON transitions (unit, at, n);

CREATE TABLE users (
	username      TEXT PRIMARY KEY,
	role          TEXT NOT NULL,
	jurisdiction  TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	disabled      INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

CREATE TABLE unit_credentials (
	unit          TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	rotated_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	username   TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The audit log is append-only: each row's hash covers it and the row
-- before (dispatch.VerifyAudit), and these triggers refuse changes.
CREATE TABLE audit (
	seq     INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail  TEXT, -- JSON as appended
	prev    TEXT NOT NULL,
	hash    TEXT NOT NULL
);
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- +goose StatementEnd

-- Position history. A fix is identified by (unit, fix_time, seq): seq
-- alone is not unique, because a terminal that reboots starts it again.
-- Clustered on that key, so a unit's track between two times is one range
-- scan.
CREATE TABLE positions (
	unit      TEXT NOT NULL,
	fix_time  INTEGER NOT NULL,
	seq       INTEGER NOT NULL, -- the uint64 seq's bits
	lat       REAL NOT NULL,
	lon       REAL NOT NULL,
	speed_kmh REAL NOT NULL,
	heading   REAL NOT NULL,
	hdop      REAL NOT NULL,
	sats      INTEGER NOT NULL,
	received  INTEGER NOT NULL,
	PRIMARY KEY (unit, fix_time, seq)
) WITHOUT ROWID;
-- Every unit that ever reported, so that Latest need not scan positions.
CREATE TABLE position_units (unit TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE video_status (
	unit    TEXT NOT NULL,
	at      INTEGER NOT NULL,
	uplink  TEXT NOT NULL,
	cameras TEXT NOT NULL -- JSON
);
CREATE INDEX video_status_unit_at ON video_status (unit, at);

-- +goose Down
DROP TABLE video_status;
DROP TABLE position_units;
DROP TABLE positions;
DROP TABLE audit;
DROP TABLE sessions;
DROP TABLE unit_credentials;
DROP TABLE users;
DROP TABLE transitions;
DROP TABLE assignments;
DROP TABLE incidents;
