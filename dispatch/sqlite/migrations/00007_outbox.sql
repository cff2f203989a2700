-- Commands to terminals are durable: a decision stores the commands it
-- causes in the same transaction (the outbox), and the courier delivers
-- and settles them, so that a command for a terminal that is offline, or
-- across a restart, is not lost. Hospitals' diversion state is kept too.

-- +goose Up
CREATE TABLE outbox (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- order of writing
	id         TEXT NOT NULL UNIQUE,
	unit       TEXT NOT NULL,
	type       TEXT NOT NULL,
	assignment TEXT NOT NULL,
	payload    TEXT NOT NULL, -- the command as the terminal gets it (JSON)
	state      TEXT NOT NULL, -- pending, delivered, expired
	attempts   INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	sent_at    INTEGER,
	settled_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (unit, seq) WHERE state = 'pending';
CREATE INDEX outbox_assignment ON outbox (assignment);

CREATE TABLE hospital_states (
	hospital   TEXT PRIMARY KEY,
	diversion  INTEGER NOT NULL,
	ends_at    INTEGER, -- when the diversion ends by itself; NULL: until lifted
	reason     TEXT NOT NULL,
	set_by     TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE hospital_states;
DROP TABLE outbox;
