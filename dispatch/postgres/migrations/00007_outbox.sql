-- Commands to terminals are durable: a decision stores the commands it
-- causes in the same transaction (the outbox), and the courier delivers
-- and settles them, so that a command for a terminal that is offline, or
-- across a restart, is not lost. Hospitals' diversion state is kept too.

-- +goose Up
CREATE TABLE outbox (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- order of writing
	id         text COLLATE "C" NOT NULL UNIQUE,
	unit       text COLLATE "C" NOT NULL,
	type       text NOT NULL,
	assignment text COLLATE "C" NOT NULL,
	payload    text NOT NULL, -- the command as the terminal gets it (JSON)
	state      text NOT NULL, -- pending, delivered, expired
	attempts   integer NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	sent_at    timestamptz,
	settled_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (unit, seq) WHERE state = 'pending';
CREATE INDEX outbox_assignment ON outbox (assignment);

CREATE TABLE hospital_states (
	hospital   text COLLATE "C" PRIMARY KEY,
	diversion  boolean NOT NULL,
	ends_at    timestamptz, -- when the diversion ends by itself; NULL: until lifted
	reason     text NOT NULL,
	set_by     text NOT NULL,
	updated_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE hospital_states;
DROP TABLE outbox;
