package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// AppendFixes implements telemetry.History. Concurrent calls are
// committed together by one writer (a group commit); each returns when its
// fixes are on disk. A fix already stored (same unit, fix time and seq) is
// stored once.
func (db *DB) AppendFixes(ctx context.Context, fixes []telemetry.Fix) error {
	return db.fixes.Append(ctx, fixes)
}

// flushFixes writes one batch in one transaction.
func (db *DB) flushFixes(ctx context.Context, fixes []telemetry.Fix) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO positions
			(unit, fix_time, seq, lat, lon, speed_kmh, heading, hdop, sats, received)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer ins.Close()
		var units []string
		for _, f := range fixes {
			if _, err := ins.ExecContext(ctx, f.Unit, micros(f.Time), int64(f.Seq), f.Lat, f.Lon,
				f.SpeedKmh, f.Heading, f.HDOP, f.Sats, micros(f.Received)); err != nil {
				return err
			}
			if len(units) == 0 || units[len(units)-1] != f.Unit {
				units = append(units, f.Unit)
			}
		}
		slices.Sort(units)
		for _, u := range slices.Compact(units) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO position_units (unit) VALUES (?) ON CONFLICT DO NOTHING`, u); err != nil {
				return err
			}
		}
		return nil
	})
}

const fixColumns = `unit, fix_time, seq, lat, lon, speed_kmh, heading, hdop, sats, received`

func scanFix(s scanner) (telemetry.Fix, error) {
	var (
		f            telemetry.Fix
		at, received int64
		seq          int64
	)
	err := s.Scan(&f.Unit, &at, &seq, &f.Lat, &f.Lon, &f.SpeedKmh, &f.Heading, &f.HDOP, &f.Sats, &received)
	f.Time, f.Seq, f.Received = fromMicros(at), uint64(seq), fromMicros(received)
	return f, err
}

// Track implements telemetry.History and dispatch.Tracks: one range scan
// of the primary key, each row handed to fn as it is read.
func (db *DB) Track(ctx context.Context, q telemetry.TrackQuery, fn func(telemetry.Fix) error) (bool, error) {
	if q.Limit <= 0 {
		return false, fmt.Errorf("track of %s: limit %d: want a positive page size", q.Unit, q.Limit)
	}
	from := ceilMicros(q.From)
	afterTime, afterSeq := from-1, int64(0) // the zero cursor excludes nothing
	if !q.After.IsZero() {
		afterTime, afterSeq = micros(q.After.Time), int64(q.After.Seq)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+fixColumns+` FROM positions
		WHERE unit = ? AND fix_time >= ? AND fix_time <= ? AND (fix_time > ? OR (fix_time = ? AND seq > ?))
		ORDER BY fix_time, seq LIMIT ?`,
		q.Unit, max(from, afterTime), micros(q.To), afterTime, afterTime, afterSeq, q.Limit+1)
	if err != nil {
		return false, fmt.Errorf("track of %s: %w", q.Unit, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n == q.Limit {
			return true, nil
		}
		f, err := scanFix(rows)
		if err != nil {
			return false, fmt.Errorf("track of %s: %w", q.Unit, err)
		}
		if err := fn(f); err != nil {
			return false, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("track of %s: %w", q.Unit, err)
	}
	return false, nil
}

// ceilMicros is from rounded up to the microsecond: stored times have
// microseconds, so a fix at t is within [from, ...] when t >= ceil(from).
func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// Latest implements telemetry.History: each unit's newest fix by fix
// time (by seq among equal times), by unit.
func (db *DB) Latest(ctx context.Context) ([]telemetry.Fix, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT p.unit, p.fix_time, p.seq, p.lat, p.lon, p.speed_kmh, p.heading,
		p.hdop, p.sats, p.received FROM position_units u, positions p
		WHERE p.unit = u.unit AND (p.fix_time, p.seq) = (
			SELECT fix_time, seq FROM positions WHERE unit = u.unit ORDER BY fix_time DESC, seq DESC LIMIT 1)
		ORDER BY u.unit`)
	out, err := collect(rows, err, scanFix)
	if err != nil {
		return nil, fmt.Errorf("latest fixes: %w", err)
	}
	return out, nil
}

// AppendVideo implements telemetry.History.
func (db *DB) AppendVideo(ctx context.Context, v telemetry.Video) error {
	cams, err := json.Marshal(v.Cameras)
	if err != nil {
		return fmt.Errorf("video of %s: %w", v.Unit, err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO video_status (unit, at, uplink, cameras) VALUES (?, ?, ?, ?)`,
			v.Unit, micros(v.Time), v.Uplink, string(cams))
		return err
	})
	if err != nil {
		return fmt.Errorf("video of %s: %w", v.Unit, err)
	}
	return nil
}

// PrunePositions deletes the position and video history older than
// before, for a retention policy; it returns how many fixes it deleted.
// The audit log and the dispatch record are never pruned.
func (db *DB) PrunePositions(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Unit by unit, so that each delete is a range of the primary key.
		res, err := tx.ExecContext(ctx, `DELETE FROM positions WHERE (unit, fix_time, seq) IN (
			SELECT p.unit, p.fix_time, p.seq FROM position_units u, positions p
			WHERE p.unit = u.unit AND p.fix_time < ?)`, micros(before))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM video_status WHERE at < ?`, micros(before))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune positions before %s: %w", before.Format(time.RFC3339), err)
	}
	return n, nil
}
