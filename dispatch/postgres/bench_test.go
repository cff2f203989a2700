package postgres

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch/internal/groupcommit"
	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Position history writes, as docs/BENCHMARKS.md reports them:
//
//	go test ./dispatch/postgres -run '^$' -bench 'BenchmarkHistory$' -benchtime 200000x -count 3
//	LIFELINE_BENCH_SUSTAINED=60s go test ./dispatch/postgres -run '^$' -bench BenchmarkHistorySustained -benchtime 1x -timeout 30m
//
// Appenders play the MQTT ingest: each is one unit's terminal whose
// messages carry benchFixesPerCall fixes, all appending at once.
const (
	benchAppenders    = 256
	benchFixesPerCall = 10
)

// appendFunc is a way of writing fixes, one call's worth at a time.
type appendFunc func(ctx context.Context, fixes []telemetry.Fix) error

// BenchmarkHistory compares, in one run, the group-commit COPY path of
// AppendFixes with one INSERT per fix, each its own transaction (what
// Traccar does), the COPY path when 1% of calls are redelivered, and two
// other ways of deduplicating a group commit.
func BenchmarkHistory(b *testing.B) {
	ways := []struct {
		name string
		open func(b *testing.B) (appendFunc, *DB)
	}{
		{"copyfrom", func(b *testing.B) (appendFunc, *DB) { db := benchDB(b, copyDirect); return db.AppendFixes, db }},
		{"insert", func(b *testing.B) (appendFunc, *DB) { db := benchDB(b, copyDirect); return db.insertEach, db }},
		{"copyfrom-redelivered-1pct", func(b *testing.B) (appendFunc, *DB) {
			db := benchDB(b, copyDirect)
			return redeliver(db.AppendFixes, 100), db
		}},
		{"copyfrom-staging", func(b *testing.B) (appendFunc, *DB) { db := benchDB(b, copyStaging); return db.AppendFixes, db }},
		{"unnest-onconflict", func(b *testing.B) (appendFunc, *DB) { db := benchDB(b, insertFixes); return db.AppendFixes, db }},
	}
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			write, db := w.open(b)
			runAppenders(b, db, write, benchAppenders, benchFixesPerCall, func(sent int64) bool { return sent < int64(b.N) })
		})
	}
}

// BenchmarkHistorySustained is the load test of the issue: 2000 units
// appending at once for a while (LIFELINE_BENCH_SUSTAINED, e.g. 60s; the
// benchmark is skipped without it), into a table that grows as it would.
// The target is 150,000 fixes a second.
func BenchmarkHistorySustained(b *testing.B) {
	d, err := time.ParseDuration(os.Getenv("LIFELINE_BENCH_SUSTAINED"))
	if err != nil {
		b.Skip("set LIFELINE_BENCH_SUSTAINED to a duration (e.g. 60s) to run the sustained load test")
	}
	units, per := 2000, benchFixesPerCall
	if v, err := strconv.Atoi(os.Getenv("LIFELINE_BENCH_UNITS")); err == nil {
		units = v
	}
	if v, err := strconv.Atoi(os.Getenv("LIFELINE_BENCH_FIXES_PER_CALL")); err == nil {
		per = v
	}
	db := benchDB(b, copyDirect)
	deadline := time.Now().Add(d)
	runAppenders(b, db, db.AppendFixes, units, per, func(int64) bool { return time.Now().Before(deadline) })
}

// benchDB opens a fresh database with copy as the fast path of the group
// commit.
func benchDB(b *testing.B, copy func(context.Context, pgx.Tx, []fixRow) error) *DB {
	b.Helper()
	dsn := pgtest.DSN(b)
	db, err := Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.copyFixes = copy
	// LIFELINE_BENCH_WRITERS and LIFELINE_BENCH_BATCH_ROWS try other
	// group-commit settings.
	writers, _ := strconv.Atoi(os.Getenv("LIFELINE_BENCH_WRITERS"))
	batch, _ := strconv.Atoi(os.Getenv("LIFELINE_BENCH_BATCH_ROWS"))
	if writers > 0 || batch > 0 {
		db.fixes.Stop()
		db.fixes = groupcommit.New(cmp.Or(writers, fixWriters), cmp.Or(batch, maxBatchRows), commitTimeout, db.logger, db.flushFixes)
	}
	return db
}

// runAppenders runs appenders goroutines, each a unit sending calls of
// per fixes while more(rows sent so far) holds, and reports rows/s and
// call latency.
func runAppenders(b *testing.B, db *DB, write appendFunc, appenders, per int, more func(sent int64) bool) {
	b.ReportAllocs()
	var (
		sent      atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		errOnce   sync.Once
		firstErr  error
		ctx       = context.Background()
		base      = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	)
	commits0, rows0 := db.fixes.Stats()
	var wal0 int64
	if err := db.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&wal0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for a := range appenders {
		wg.Go(func() {
			unit := fmt.Sprintf("FS-%04d", a)
			var lat []time.Duration
			fixes := make([]telemetry.Fix, per)
			for seq := uint64(0); ; {
				if n := sent.Add(int64(per)); !more(n - int64(per)) {
					break
				}
				for i := range fixes {
					fixes[i] = telemetry.Fix{
						Unit: unit, Seq: seq, Time: base.Add(time.Duration(seq) * 100 * time.Millisecond),
						Lat: 29.18 + float64(seq%1000)*1e-5, Lon: 104.97, SpeedKmh: 42.5, Heading: 270, HDOP: 0.9, Sats: 11,
						Received: base.Add(time.Duration(seq)*100*time.Millisecond + time.Second),
					}
					seq++
				}
				t := time.Now()
				if err := write(ctx, fixes); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			latencies = append(latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	var rows int64
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM positions`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if want := int64(len(latencies) * per); rows != want {
		b.Fatalf("%d rows stored, want %d", rows, want)
	}
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	var wal1 int64
	if err := db.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&wal1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(wal1-wal0)/1e6/elapsed.Seconds(), "WAL-MB/s") // the whole server's, others' included
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		b.ReportMetric(float64(latencies[n/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(latencies[n*99/100].Microseconds())/1000, "p99-ms")
	}
	if commits, rows := db.fixes.Stats(); commits > commits0 {
		b.ReportMetric(float64(rows-rows0)/float64(commits-commits0), "rows/commit")
	}
	b.ReportMetric(0, "ns/op") // rows/s is the measure; ns/op per row would mislead
}

// redeliver returns write that sends every nth call twice, as an MQTT
// redelivery would: the second time, every fix is already stored, so the
// batch it joins takes the ON CONFLICT path.
func redeliver(write appendFunc, n int64) appendFunc {
	var calls atomic.Int64
	return func(ctx context.Context, fixes []telemetry.Fix) error {
		if err := write(ctx, fixes); err != nil || calls.Add(1)%n != 0 {
			return err
		}
		return write(ctx, fixes)
	}
}

// insertEach is the baseline: one INSERT per fix, each committed on its
// own, as Traccar writes positions.
func (db *DB) insertEach(ctx context.Context, fixes []telemetry.Fix) error {
	for _, f := range fixes {
		_, err := db.pool.Exec(ctx, `INSERT INTO positions (`+fixSelect+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
			f.Time, int64(f.Seq), f.Lat, f.Lon, f.SpeedKmh, f.Heading, f.HDOP, f.Received, int32(f.Sats), f.Unit)
		if err != nil {
			return err
		}
	}
	return nil
}

// copyStaging is the textbook deduplicating COPY: into a temporary table,
// then INSERT ... SELECT ... ON CONFLICT DO NOTHING.
func copyStaging(ctx context.Context, tx pgx.Tx, rows []fixRow) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS positions_stage (LIKE positions) ON COMMIT DELETE ROWS`); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"positions_stage"}, fixColumns, &fixSource{rows: rows}); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO positions (`+fixSelect+`) SELECT `+fixSelect+` FROM positions_stage ON CONFLICT DO NOTHING`)
	return err
}
