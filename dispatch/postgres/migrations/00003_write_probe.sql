-- What the readiness probe writes into, after a write failed for want of
-- room, to learn whether there is room again (postgres.go, probe). It is
-- rolled back each time; pad is stored uncompressed so that the probe
-- costs the disk what it says.

-- +goose Up
CREATE TABLE write_probe (pad text NOT NULL);
ALTER TABLE write_probe ALTER COLUMN pad SET STORAGE EXTERNAL;

-- +goose Down
DROP TABLE write_probe;
