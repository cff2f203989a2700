package postgres

import "time"

// StoreError maps err as a statement of db would (a write or a read).
func StoreError(db *DB, err error, write bool) error { return db.pool.storeError(err, write) }

// SetProbeEvery sets how often Ping probes while writes fail.
func SetProbeEvery(db *DB, d time.Duration) { db.pool.writes.Every = d }
