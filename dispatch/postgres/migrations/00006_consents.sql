-- Consent for borrowed units: a county's request to borrow another
-- county's unit, answered (a compare-and-set on version) in the same
-- transaction as the assignment it makes; and each county's consent
-- policy as set over the API, which overrides the area file's.

-- +goose Up
CREATE TABLE consents (
	id                text COLLATE "C" PRIMARY KEY,
	incident          text COLLATE "C" NOT NULL REFERENCES incidents (id),
	unit              text COLLATE "C" NOT NULL,
	from_jurisdiction text COLLATE "C" NOT NULL, -- the county that owns the unit and answers
	to_jurisdiction   text COLLATE "C" NOT NULL, -- the county that asks
	priority          integer NOT NULL,
	category          text NOT NULL,
	lat               double precision NOT NULL,
	lon               double precision NOT NULL,
	status            text NOT NULL,
	requested_by      text NOT NULL,
	decided_by        text NOT NULL,
	reason            text NOT NULL,
	assignment        text COLLATE "C" NOT NULL,
	version           bigint NOT NULL,
	created_at        timestamptz NOT NULL,
	expires_at        timestamptz, -- pending requests only
	decided_at        timestamptz
);
-- One pending request per unit: the store, not the caller, makes sure.
CREATE UNIQUE INDEX consents_one_pending_per_unit ON consents (unit) WHERE status = 'pending';
CREATE INDEX consents_status_created ON consents (status, created_at DESC, id);
CREATE INDEX consents_incident ON consents (incident, created_at);

CREATE TABLE jurisdiction_policies (
	jurisdiction text COLLATE "C" PRIMARY KEY,
	consent      text NOT NULL, -- auto or ask
	updated_by   text NOT NULL,
	updated_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE jurisdiction_policies;
DROP TABLE consents;
