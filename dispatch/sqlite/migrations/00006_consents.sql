-- Consent for borrowed units: a county's request to borrow another
-- county's unit, answered (a compare-and-set on version) in the same
-- transaction as the assignment it makes; and each county's consent
-- policy as set over the API, which overrides the area file's.

-- +goose Up
CREATE TABLE consents (
	id                TEXT PRIMARY KEY,
	incident          TEXT NOT NULL REFERENCES incidents (id),
	unit              TEXT NOT NULL,
	from_jurisdiction TEXT NOT NULL, -- the county that owns the unit and answers
	to_jurisdiction   TEXT NOT NULL, -- the county that asks
	priority          INTEGER NOT NULL,
	category          TEXT NOT NULL,
	lat               REAL NOT NULL,
	lon               REAL NOT NULL,
	status            TEXT NOT NULL,
	requested_by      TEXT NOT NULL,
	decided_by        TEXT NOT NULL,
	reason            TEXT NOT NULL,
	assignment        TEXT NOT NULL,
	version           INTEGER NOT NULL,
	created_at        INTEGER NOT NULL,
	expires_at        INTEGER, -- pending requests only
	decided_at        INTEGER
);
-- One pending request per unit: the store, not the caller, makes sure.
CREATE UNIQUE INDEX consents_one_pending_per_unit ON consents (unit) WHERE status = 'pending';
CREATE INDEX consents_status_created ON consents (status, created_at DESC, id);
CREATE INDEX consents_incident ON consents (incident, created_at);

CREATE TABLE jurisdiction_policies (
	jurisdiction TEXT PRIMARY KEY,
	consent      TEXT NOT NULL, -- auto or ask
	updated_by   TEXT NOT NULL,
	updated_at   INTEGER NOT NULL
);

-- +goose Down
DROP TABLE jurisdiction_policies;
DROP TABLE consents;
