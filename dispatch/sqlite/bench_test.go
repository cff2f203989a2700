package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// Position history writes, as docs/BENCHMARKS.md reports them:
//
//	go test ./dispatch/sqlite -run '^$' -bench 'BenchmarkHistory$' -benchtime 100000x -count 3
//
// Appenders play the MQTT ingest: each is one unit's terminal whose
// messages carry benchFixesPerCall fixes, all appending at once.
const (
	benchAppenders    = 256
	benchFixesPerCall = 10
)

// BenchmarkHistory compares, in one run, the group commit of AppendFixes
// with one INSERT per fix, each its own transaction.
func BenchmarkHistory(b *testing.B) {
	ways := []struct {
		name  string
		write func(db *DB) func(context.Context, []telemetry.Fix) error
	}{
		{"groupcommit", func(db *DB) func(context.Context, []telemetry.Fix) error { return db.AppendFixes }},
		{"insert", func(db *DB) func(context.Context, []telemetry.Fix) error { return db.insertEach }},
	}
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			// fsync is the point: TMPDIR must be on a disk, not a tmpfs.
			db, err := Open(context.Background(), b.TempDir(), slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			runAppenders(b, db, w.write(db), func(sent int64) bool { return sent < int64(b.N) })
		})
	}
}

// runAppenders runs the appenders while more(rows sent so far) holds and
// reports rows/s and call latency.
func runAppenders(b *testing.B, db *DB, write func(context.Context, []telemetry.Fix) error, more func(sent int64) bool) {
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
	b.ResetTimer()
	start := time.Now()
	for a := range benchAppenders {
		wg.Go(func() {
			unit := fmt.Sprintf("FS-%04d", a)
			var lat []time.Duration
			fixes := make([]telemetry.Fix, benchFixesPerCall)
			for seq := uint64(0); ; {
				if n := sent.Add(benchFixesPerCall); !more(n - benchFixesPerCall) {
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
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM positions`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if want := int64(len(latencies) * benchFixesPerCall); rows != want {
		b.Fatalf("%d rows stored, want %d", rows, want)
	}
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		b.ReportMetric(float64(latencies[n/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(latencies[n*99/100].Microseconds())/1000, "p99-ms")
	}
	if commits, rows := db.fixes.Stats(); commits > commits0 {
		b.ReportMetric(float64(rows-rows0)/float64(commits-commits0), "rows/commit")
	}
	b.ReportMetric(0, "ns/op") // rows/s is the measure
}

// insertEach is the baseline: one INSERT per fix, each its own transaction.
func (db *DB) insertEach(ctx context.Context, fixes []telemetry.Fix) error {
	for _, f := range fixes {
		_, err := db.write.ExecContext(ctx, `INSERT INTO positions
			(unit, fix_time, seq, lat, lon, speed_kmh, heading, hdop, sats, received)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			f.Unit, micros(f.Time), int64(f.Seq), f.Lat, f.Lon, f.SpeedKmh, f.Heading, f.HDOP, f.Sats, micros(f.Received))
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkServedReads is the reads a served API call may make when
// memory cannot answer (a session, its user, a call, the call's
// assignments), each way in the same run:
//
//	go test ./dispatch/sqlite -run '^$' -bench BenchmarkServedReads -benchmem -count 3
//
// oneshot is how they were made before: a query string on the pool,
// which the driver parses and plans anew every time; prepared is the
// store's own methods, on statements prepared once per connection.
func BenchmarkServedReads(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	if err := db.CreateUser(ctx, &dispatch.User{Username: "li", Role: dispatch.RoleDispatcher, Jurisdiction: "510322", PasswordHash: "x", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateSession(ctx, dispatch.Session{TokenHash: "h", Username: "li", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	inc := &dispatch.Incident{ID: "INC-1", Priority: 1, Category: dispatch.CatStroke, Status: dispatch.IncidentOpen, Version: 1, CreatedAt: t0, UpdatedAt: t0}
	if _, _, err := db.CreateIncident(ctx, inc); err != nil {
		b.Fatal(err)
	}
	ways := []struct {
		name string
		read func() error
	}{
		{"oneshot", func() error {
			var name string
			var created, expires int64
			if err := db.read.QueryRowContext(ctx, `SELECT username, created_at, expires_at FROM sessions WHERE token_hash = ?`, "h").Scan(&name, &created, &expires); err != nil {
				return err
			}
			if _, err := scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, name)); err != nil {
				return err
			}
			if _, err := scanIncident(db.read.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, "INC-1")); err != nil {
				return err
			}
			rows, err := db.read.QueryContext(ctx, `SELECT `+assignmentColumns+` FROM assignments WHERE incident = ? ORDER BY created_at, id`, "INC-1")
			_, err = collect(rows, err, scanAssignment)
			return err
		}},
		{"prepared", func() error {
			s, err := db.Session(ctx, "h")
			if err != nil {
				return err
			}
			if _, err := db.User(ctx, s.Username); err != nil {
				return err
			}
			if _, err := db.Incident(ctx, "INC-1"); err != nil {
				return err
			}
			_, err = db.Assignments(ctx, "INC-1")
			return err
		}},
	}
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := w.read(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
