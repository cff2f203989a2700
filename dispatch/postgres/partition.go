package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Position history is range-partitioned by fix time, one partition a week
// (Monday 00:00 UTC to the next), named positions_wYYYYMMDD after its
// Monday. The default partition catches fixes no weekly partition covers.
const (
	week = 7 * 24 * time.Hour
	// partitionsBehind reaches back over the oldest fix the telemetry
	// validator accepts by default (72 h of store-and-forward).
	partitionsBehind = 4 * 24 * time.Hour
	// partitionsAhead is how far ahead partitions exist, so that a
	// maintenance run that is missed for a week changes nothing.
	partitionsAhead = 3 * week
	// maintenanceLockTimeout bounds how long maintenance waits for the
	// locks it needs; it gives up (and the next run tries again) rather
	// than queue ingest behind it.
	maintenanceLockTimeout = "5s"
)

// monday returns the start of t's week (Monday 00:00 UTC).
func monday(t time.Time) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

func partitionName(start time.Time) string { return "positions_w" + start.Format("20060102") }

// MaintainPartitions keeps the weekly partitions of the position history:
// it creates those from the week of now minus the validator's 72 h up to
// three weeks ahead (moving any fixes the default partition holds for
// them), and, when retention is positive, drops the partitions entirely
// older than now minus retention and deletes such fixes from the default
// partition. Open calls it with retention 0 (drop nothing); run it daily,
// e.g. as a once-only duty (several servers serialise on an advisory
// lock, so running it everywhere is safe too). The audit log and the
// dispatch record are never dropped.
func (db *DB) MaintainPartitions(ctx context.Context, now time.Time, retention time.Duration) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("maintain partitions: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockPartitions); err != nil {
		return fmt.Errorf("maintain partitions: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockPartitions)

	for start := monday(now.Add(-partitionsBehind)); start.Before(now.Add(partitionsAhead)); start = start.Add(week) {
		if err := db.createPartition(ctx, conn, start); err != nil {
			return fmt.Errorf("maintain partitions: create %s: %w", partitionName(start), err)
		}
	}
	if retention > 0 {
		if err := db.dropPartitions(ctx, conn, now.Add(-retention)); err != nil {
			return fmt.Errorf("maintain partitions: %w", err)
		}
	}
	return nil
}

// createPartition creates the partition of the week from start if it is
// missing. It is created detached, filled with what the default partition
// holds for its week, and attached: ATTACH PARTITION takes only a SHARE
// UPDATE EXCLUSIVE lock on positions, so ingest goes on meanwhile.
func (db *DB) createPartition(ctx context.Context, conn *pgxpool.Conn, start time.Time) error {
	name := partitionName(start)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil || exists {
		return err
	}
	end := start.Add(week)
	ident := pgx.Identifier{name}.Sanitize()
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		stmts := []string{
			`SET LOCAL lock_timeout = '` + maintenanceLockTimeout + `'`,
			// Writers routed to the default partition wait until the move is done.
			`LOCK TABLE positions_default IN SHARE ROW EXCLUSIVE MODE`,
			`CREATE TABLE ` + ident + ` (LIKE positions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM positions_default WHERE fix_time >= $1 AND fix_time < $2 RETURNING *)
			INSERT INTO `+ident+` SELECT * FROM moved`, start, end)
		if err != nil {
			return err
		}
		if n := tag.RowsAffected(); n > 0 {
			db.logger.Warn("moved fixes out of the default partition", "partition", name, "rows", n)
		}
		_, err = tx.Exec(ctx, `ALTER TABLE positions ATTACH PARTITION `+ident+` FOR VALUES FROM ('`+
			start.Format(time.RFC3339)+`') TO ('`+end.Format(time.RFC3339)+`')`)
		if err == nil {
			db.logger.Info("created partition", "partition", name)
		}
		return err
	})
}

// dropPartitions drops the weekly partitions that end at or before cutoff
// and deletes older fixes from the default partition.
func (db *DB) dropPartitions(ctx context.Context, conn *pgxpool.Conn, cutoff time.Time) error {
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'positions'::regclass AND c.relname LIKE 'positions\_w%' ORDER BY c.relname`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range names {
		start, err := time.Parse("20060102", strings.TrimPrefix(name, "positions_w"))
		if err != nil || start.Add(week).After(cutoff) {
			continue
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+maintenanceLockTimeout+`'`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize())
			return err
		})
		if err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		db.logger.Info("dropped partition", "partition", name, "cutoff", cutoff)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM positions_default WHERE fix_time < $1`, cutoff); err != nil {
		return fmt.Errorf("prune default partition: %w", err)
	}
	return nil
}
