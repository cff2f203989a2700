package sqlite

import "context"

// Exec runs a statement on db's writer, for tests that go behind the API.
func Exec(ctx context.Context, db *DB, query string) error {
	_, err := db.write.ExecContext(ctx, query)
	return err
}

// CommitStats returns how many group commits wrote how many rows.
func CommitStats(db *DB) (commits, rows int64) { return db.fixes.Stats() }
