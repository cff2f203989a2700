package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Exec runs a statement on db's pool, for tests that go behind the API.
func Exec(ctx context.Context, db *DB, query string, args ...any) error {
	_, err := db.pool.Exec(ctx, query, args...)
	return err
}

// QueryStrings runs a query returning one text column.
func QueryStrings(ctx context.Context, db *DB, query string, args ...any) ([]string, error) {
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CommitStats returns how many group commits wrote how many rows.
func CommitStats(db *DB) (commits, rows int64) { return db.fixes.Stats() }
