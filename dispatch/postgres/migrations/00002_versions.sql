-- Every dispatch decision is one transaction of compare-and-sets: rows
-- carry a version that each change increments. unit_records holds each
-- unit's dispatch state, written in the same transaction as the
-- assignment and transition that change it.

-- +goose Up
ALTER TABLE incidents ADD COLUMN outcome text NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE assignments ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE TABLE unit_records (
	unit       text COLLATE "C" PRIMARY KEY,
	status     text NOT NULL,
	incident   text COLLATE "C" NOT NULL,
	assignment text COLLATE "C" NOT NULL,
	press_at   timestamptz, -- the last crew status press applied
	version    bigint NOT NULL,
	at         timestamptz NOT NULL
);

-- What the server used to rebuild at start: each unit's newest transition
-- (newest by time, the last appended among equal times), its active
-- assignment, and its last press.
INSERT INTO unit_records (unit, status, incident, assignment, press_at, version, at)
SELECT t.unit,
	CASE WHEN a.id IS NOT NULL AND t.to_status NOT IN ('dispatched', 'en_route', 'on_scene', 'transporting', 'at_hospital')
		THEN 'dispatched' ELSE t.to_status END,
	COALESCE(a.incident, ''), COALESCE(a.id, ''),
	(SELECT max(p.at) FROM transitions p WHERE p.unit = t.unit AND p.source = 'terminal'),
	1, t.at
FROM (SELECT DISTINCT ON (unit) unit, to_status, at FROM transitions ORDER BY unit, at DESC, n DESC) t
LEFT JOIN assignments a ON a.unit = t.unit AND a.status IN ('offered', 'accepted');
INSERT INTO unit_records (unit, status, incident, assignment, press_at, version, at)
SELECT a.unit, 'dispatched', a.incident, a.id, NULL, 1, a.created_at
FROM assignments a
WHERE a.status IN ('offered', 'accepted') AND a.unit NOT IN (SELECT unit FROM unit_records);

-- +goose Down
DROP TABLE unit_records;
ALTER TABLE assignments DROP COLUMN version;
ALTER TABLE incidents DROP COLUMN version;
ALTER TABLE incidents DROP COLUMN outcome;
