package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// AppendFixes implements telemetry.History. Concurrent calls are gathered
// by the group-commit writers and written with COPY, many calls to one
// transaction; each call returns once its fixes are committed. A fix
// already stored (same unit, fix time and seq) is stored once.
func (db *DB) AppendFixes(ctx context.Context, fixes []telemetry.Fix) error {
	return db.fixes.Append(ctx, fixes)
}

// fixRow is a fix as stored, its fields addressable for COPY.
type fixRow struct {
	time     time.Time
	seq      int64
	lat, lon float64
	speed    float64
	heading  float64
	hdop     float64
	received time.Time
	sats     int32
	unit     string
}

// fixColumns are the columns of positions in fixRow's order.
var fixColumns = []string{"fix_time", "seq", "lat", "lon", "speed_kmh", "heading", "hdop", "received", "sats", "unit"}

const fixSelect = `fix_time, seq, lat, lon, speed_kmh, heading, hdop, received, sats, unit`

// rowsOf converts fixes to rows sorted by key (unit, fix time, seq), each
// key once. Sorting makes concurrent writers take index locks in one
// order, and a batch's own duplicates would fail a COPY.
func rowsOf(fixes []telemetry.Fix) []fixRow {
	rows := make([]fixRow, len(fixes))
	for i, f := range fixes {
		rows[i] = fixRow{
			time: f.Time.Truncate(time.Microsecond), seq: int64(f.Seq), lat: f.Lat, lon: f.Lon,
			speed: f.SpeedKmh, heading: f.Heading, hdop: f.HDOP,
			received: f.Received.Truncate(time.Microsecond), sats: int32(f.Sats), unit: f.Unit,
		}
	}
	key := func(a, b fixRow) int {
		return cmp.Or(cmp.Compare(a.unit, b.unit), a.time.Compare(b.time), cmp.Compare(a.seq, b.seq))
	}
	if !slices.IsSortedFunc(rows, key) {
		slices.SortStableFunc(rows, key)
	}
	return slices.CompactFunc(rows, func(a, b fixRow) bool { return key(a, b) == 0 })
}

// conflictBackoff is how long the writers skip the COPY fast path after
// it met a stored fix: duplicates come in bursts (a terminal's
// store-and-forward resent, a broker redelivering after a reconnect), and
// a failed COPY is wasted work.
const conflictBackoff = time.Second

// flushFixes writes one batch in one transaction: COPY straight into
// positions, the fast path when no fix is stored yet; if one is (a
// redelivery), the batch is written again with INSERT ... ON CONFLICT DO
// NOTHING, and so are the batches of the next conflictBackoff.
func (db *DB) flushFixes(ctx context.Context, fixes []telemetry.Fix) error {
	rows := rowsOf(fixes)
	units := db.units.missing(rows)
	var err error
	if time.Now().UnixNano() < db.conflictUntil.Load() {
		err = db.writeFixes(ctx, rows, units, insertFixes)
	} else {
		err = db.writeFixes(ctx, rows, units, db.copyFixes)
		if code := pgCode(err); code == uniqueViolation || code == deadlockDetected {
			db.conflictUntil.Store(time.Now().Add(conflictBackoff).UnixNano())
			err = db.writeFixes(ctx, rows, units, insertFixes)
		}
	}
	if err != nil {
		return err
	}
	db.units.add(units)
	return nil
}

func (db *DB) writeFixes(ctx context.Context, rows []fixRow, units []string, write func(context.Context, pgx.Tx, []fixRow) error) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if len(units) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO position_units (unit) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, units); err != nil {
				return err
			}
		}
		return write(ctx, tx, rows)
	})
}

// copyDirect COPYs rows into positions; a stored key fails it.
func copyDirect(ctx context.Context, tx pgx.Tx, rows []fixRow) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"positions"}, fixColumns, &fixSource{rows: rows})
	return err
}

// insertFixes inserts rows with one statement, skipping stored keys.
func insertFixes(ctx context.Context, tx pgx.Tx, rows []fixRow) error {
	var (
		times, received               = make([]time.Time, len(rows)), make([]time.Time, len(rows))
		seqs                          = make([]int64, len(rows))
		lats, lons, speeds, heads, hd = make([]float64, len(rows)), make([]float64, len(rows)), make([]float64, len(rows)), make([]float64, len(rows)), make([]float64, len(rows))
		sats                          = make([]int32, len(rows))
		units                         = make([]string, len(rows))
	)
	for i, r := range rows {
		times[i], seqs[i], lats[i], lons[i], speeds[i], heads[i], hd[i], received[i], sats[i], units[i] =
			r.time, r.seq, r.lat, r.lon, r.speed, r.heading, r.hdop, r.received, r.sats, r.unit
	}
	_, err := tx.Exec(ctx, `INSERT INTO positions (`+fixSelect+`)
		SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[],
			$6::float8[], $7::float8[], $8::timestamptz[], $9::int4[], $10::text[])
		ON CONFLICT DO NOTHING`, times, seqs, lats, lons, speeds, heads, hd, received, sats, units)
	return err
}

// fixSource feeds rows to COPY without allocating per row.
type fixSource struct {
	rows []fixRow
	i    int
	vals [10]any
}

func (s *fixSource) Next() bool { s.i++; return s.i <= len(s.rows) }

func (s *fixSource) Values() ([]any, error) {
	r := &s.rows[s.i-1]
	s.vals = [10]any{&r.time, &r.seq, &r.lat, &r.lon, &r.speed, &r.heading, &r.hdop, &r.received, &r.sats, &r.unit}
	return s.vals[:], nil
}

func (s *fixSource) Err() error { return nil }

// unitSet remembers which units have a row in position_units, so that a
// batch inserts there only the units this server has not written before.
type unitSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

// missing returns the units of rows (sorted, as rows are) not in the set.
func (s *unitSet) missing(rows []fixRow) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range rows {
		if _, ok := s.m[r.unit]; !ok && (len(out) == 0 || out[len(out)-1] != r.unit) {
			out = append(out, r.unit)
		}
	}
	return out
}

func (s *unitSet) add(units []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range units {
		s.m[u] = struct{}{}
	}
}

func scanFix(row pgx.Row) (telemetry.Fix, error) {
	var (
		f    telemetry.Fix
		seq  int64
		sats int32
	)
	err := row.Scan(&f.Time, &seq, &f.Lat, &f.Lon, &f.SpeedKmh, &f.Heading, &f.HDOP, &f.Received, &sats, &f.Unit)
	f.Time, f.Received, f.Seq, f.Sats = utc(f.Time), utc(f.Received), uint64(seq), int(sats)
	return f, err
}

// Track implements telemetry.History and dispatch.Tracks: one range scan
// of the primary key, in the partitions the time range touches, each row
// handed to fn as it is read.
func (db *DB) Track(ctx context.Context, q telemetry.TrackQuery, fn func(telemetry.Fix) error) (bool, error) {
	if q.Limit <= 0 {
		return false, fmt.Errorf("track of %s: limit %d: want a positive page size", q.Unit, q.Limit)
	}
	from := ceilMicro(q.From)
	afterTime, afterSeq := from.Add(-time.Microsecond), int64(0) // the zero cursor excludes nothing
	if !q.After.IsZero() {
		afterTime, afterSeq = q.After.Time.Truncate(time.Microsecond), int64(q.After.Seq)
	}
	lower := from
	if afterTime.After(lower) {
		lower = afterTime
	}
	rows, err := db.pool.Query(ctx, `SELECT `+fixSelect+` FROM positions
		WHERE unit = $1 AND fix_time >= $2 AND fix_time <= $3 AND (fix_time > $4 OR (fix_time = $4 AND seq > $5))
		ORDER BY fix_time, seq LIMIT $6`,
		q.Unit, lower, q.To.Truncate(time.Microsecond), afterTime, afterSeq, q.Limit+1)
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

// Latest implements telemetry.History: each unit's newest fix by fix
// time (by seq among equal times), by unit; one index probe per unit.
func (db *DB) Latest(ctx context.Context) ([]telemetry.Fix, error) {
	rows, err := db.pool.Query(ctx, `SELECT p.* FROM position_units u CROSS JOIN LATERAL (
			SELECT `+fixSelect+` FROM positions WHERE unit = u.unit ORDER BY fix_time DESC, seq DESC LIMIT 1) p
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
	if err == nil {
		_, err = db.pool.Exec(ctx, `INSERT INTO video_status (unit, at, uplink, cameras) VALUES ($1, $2, $3, $4)`,
			v.Unit, v.Time, v.Uplink, string(cams))
	}
	if err != nil {
		return fmt.Errorf("video of %s: %w", v.Unit, err)
	}
	return nil
}
