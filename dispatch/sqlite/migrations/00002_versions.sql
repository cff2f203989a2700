-- Every dispatch decision is one transaction of compare-and-sets: rows
-- carry a version that each change increments. unit_records holds each
-- unit's dispatch state, written in the same transaction as the
-- assignment and transition that change it.

-- +goose Up
ALTER TABLE incidents ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE assignments ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE unit_records (
	unit       TEXT PRIMARY KEY,
	status     TEXT NOT NULL,
	incident   TEXT NOT NULL,
	assignment TEXT NOT NULL,
	press_at   INTEGER, -- the last crew status press applied
	version    INTEGER NOT NULL,
	at         INTEGER NOT NULL
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
FROM transitions t
LEFT JOIN assignments a ON a.unit = t.unit AND a.status IN ('offered', 'accepted')
WHERE t.n = (SELECT n FROM transitions WHERE unit = t.unit ORDER BY at DESC, n DESC LIMIT 1);
INSERT INTO unit_records (unit, status, incident, assignment, press_at, version, at)
SELECT a.unit, 'dispatched', a.incident, a.id, NULL, 1, a.created_at
FROM assignments a
WHERE a.status IN ('offered', 'accepted') AND a.unit NOT IN (SELECT unit FROM unit_records);

-- +goose Down
DROP TABLE unit_records;
ALTER TABLE assignments DROP COLUMN version;
ALTER TABLE incidents DROP COLUMN version;
ALTER TABLE incidents DROP COLUMN outcome;
