-- Lifeline's shared record in PostgreSQL. Identifiers use the "C"
-- collation, so that every store orders them bytewise, as Go does.

-- +goose Up
CREATE TABLE incidents (
	id           text COLLATE "C" PRIMARY KEY,
	external_id  text NOT NULL DEFAULT '',
	source       text NOT NULL DEFAULT '',
	lat          double precision NOT NULL,
	lon          double precision NOT NULL,
	address      text NOT NULL,
	priority     integer NOT NULL,
	category     text NOT NULL,
	jurisdiction text NOT NULL,
	zone         text NOT NULL,
	radius_m     double precision NOT NULL,
	status       text NOT NULL,
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	closed_at    timestamptz
);
-- A call reported twice by the same source is one incident.
CREATE UNIQUE INDEX incidents_external ON incidents (source, external_id) WHERE external_id <> '';
CREATE INDEX incidents_created ON incidents (created_at DESC, id);
CREATE INDEX incidents_status_created ON incidents (status, created_at DESC, id);

CREATE TABLE assignments (
	id          text COLLATE "C" PRIMARY KEY,
	incident    text COLLATE "C" NOT NULL REFERENCES incidents (id),
	unit        text COLLATE "C" NOT NULL,
	status      text NOT NULL,
	assigned_by text NOT NULL,
	reason      text NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
-- One active assignment per unit, whichever server asks: the second
-- insert waits for the first to commit, then fails with unique_violation.
CREATE UNIQUE INDEX assignments_one_active_per_unit ON assignments (unit) WHERE status IN ('offered', 'accepted');
CREATE INDEX assignments_incident ON assignments (incident, created_at, id);

CREATE TABLE transitions (
	n           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- order of appending
	unit        text COLLATE "C" NOT NULL,
	incident    text COLLATE "C" NOT NULL,
	from_status text NOT NULL,
	to_status   text NOT NULL,
	at          timestamptz NOT NULL,
	source      text NOT NULL
);
CREATE INDEX transitions_incident ON transitions (incident, n);
CREATE INDEX transitions_unit ON transitions (unit, at DESC, n DESC);

CREATE TABLE users (
	username      text COLLATE "C" PRIMARY KEY,
	role          text NOT NULL,
	jurisdiction  text NOT NULL,
	password_hash text NOT NULL,
	disabled      boolean NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

CREATE TABLE unit_credentials (
	unit          text COLLATE "C" PRIMARY KEY,
	password_hash text NOT NULL,
	rotated_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
	token_hash text PRIMARY KEY,
	username   text COLLATE "C" NOT NULL REFERENCES users (username) ON DELETE CASCADE,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The audit log is append-only. Appenders serialise on an advisory lock
-- and seal each entry after the last (dispatch.AuditEntry.Seal); the
-- trigger refuses UPDATE, DELETE and TRUNCATE. A superuser can still drop
-- the trigger: that is what the hash chain (dispatch.VerifyAudit) detects.
CREATE TABLE audit (
	seq     bigint PRIMARY KEY,
	at      timestamptz NOT NULL,
	actor   text NOT NULL,
	action  text NOT NULL,
	subject text NOT NULL,
	detail  text, -- JSON exactly as appended (jsonb would reorder it)
	prev    text NOT NULL,
	hash    text NOT NULL
);
-- +goose StatementBegin
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit log is append-only: % refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Position history, range-partitioned by fix time (one partition a week,
-- created ahead and dropped after the retention period by
-- DB.MaintainPartitions; the default partition catches anything outside
-- them). A fix is identified by (unit, fix_time, seq): seq alone is not
-- unique, because a terminal that reboots starts it again; and a unique
-- key of a partitioned table must contain the partition key. The primary
-- key is also the index of "the track of unit U between T1 and T2".
-- Columns are ordered for alignment: fixed-width first.
CREATE TABLE positions (
	fix_time  timestamptz NOT NULL,
	seq       bigint NOT NULL, -- the uint64 seq's bits
	lat       double precision NOT NULL,
	lon       double precision NOT NULL,
	speed_kmh double precision NOT NULL,
	heading   double precision NOT NULL,
	hdop      double precision NOT NULL,
	received  timestamptz NOT NULL,
	sats      integer NOT NULL,
	unit      text COLLATE "C" NOT NULL,
	PRIMARY KEY (unit, fix_time, seq)
) PARTITION BY RANGE (fix_time);
CREATE TABLE positions_default PARTITION OF positions DEFAULT;

-- Every unit that ever reported, so that Latest probes each unit's newest
-- fix instead of scanning the history.
CREATE TABLE position_units (unit text COLLATE "C" PRIMARY KEY);

CREATE TABLE video_status (
	unit    text COLLATE "C" NOT NULL,
	at      timestamptz NOT NULL,
	uplink  text NOT NULL,
	cameras jsonb NOT NULL
);
CREATE INDEX video_status_unit_at ON video_status (unit, at);

-- +goose Down
DROP TABLE video_status;
DROP TABLE position_units;
DROP TABLE positions;
DROP TABLE audit;
DROP FUNCTION audit_append_only;
DROP TABLE sessions;
DROP TABLE unit_credentials;
DROP TABLE users;
DROP TABLE transitions;
DROP TABLE assignments;
DROP TABLE incidents;
