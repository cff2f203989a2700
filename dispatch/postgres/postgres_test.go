package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/postgres"
	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/dispatch/storetest"
	"github.com/lifeline-ems/lifeline/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// open opens dsn as one server would, closing it when tb ends.
func open(tb testing.TB, dsn string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := open(t, pgtest.DSN(t))
		return storetest.Stores{Store: db, Users: db, Audit: db, History: db}
	})
}

// TestTwoServers runs what must never happen twice against two servers
// sharing one database: assigning a unit, and extending the audit chain.
func TestTwoServers(t *testing.T) {
	dsn := pgtest.DSN(t)
	var (
		servers [2]*postgres.DB
		wg      sync.WaitGroup
	)
	for i := range servers { // they start together: migrations must not collide
		wg.Go(func() { servers[i] = open(t, dsn) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ctx := t.Context()
	inc := &dispatch.Incident{ID: "INC-1", Priority: 1, Category: dispatch.CatTrauma, Status: dispatch.IncidentOpen, Version: 1, CreatedAt: t0, UpdatedAt: t0}
	if _, _, err := servers[0].CreateIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}

	t.Run("Assignment", func(t *testing.T) {
		const per = 8
		errs := make([]error, 2*per)
		start := make(chan struct{})
		for i := range errs {
			wg.Go(func() {
				<-start
				// Each caller makes the whole decision from the same state:
				// the incident at version 1, the unit without a record.
				a := &dispatch.Assignment{ID: fmt.Sprintf("ASG-%d", i), Incident: "INC-1", Unit: "U1", Status: dispatch.AssignOffered, Version: 1, CreatedAt: t0, UpdatedAt: t0}
				assigned := *inc
				assigned.Status, assigned.Version = dispatch.IncidentAssigned, 2
				errs[i] = servers[i%2].Apply(ctx, dispatch.Change{
					Incident:    &assigned,
					Assignments: []*dispatch.Assignment{a},
					Units:       []dispatch.UnitRecord{{Unit: "U1", Status: dispatch.Dispatched, Incident: "INC-1", Assignment: a.ID, Version: 1, At: t0}},
					Transitions: []dispatch.Transition{{Unit: "U1", Incident: "INC-1", From: dispatch.Available, To: dispatch.Dispatched, At: t0, Source: "dispatcher:li"}},
				})
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch dispatch.ErrorCode(err) {
			case dispatch.CodeInternal:
				if err != nil {
					t.Fatal(err)
				}
				won++
			case dispatch.CodeConflict:
			default:
				t.Fatalf("got %v, want nil or conflict", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d servers' callers assigned U1, want 1", won)
		}
	})

	t.Run("Audit", func(t *testing.T) {
		const per = 25
		errs := make([]error, 2*per)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = servers[i%2].AppendAudit(ctx, dispatch.AuditEntry{At: t0, Actor: fmt.Sprintf("server%d", i%2), Action: "assign", Subject: fmt.Sprint(i)})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		log, err := servers[1].AuditLog(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 2*per {
			t.Fatalf("%d entries, want %d", len(log), 2*per)
		}
		if err := dispatch.VerifyAudit(log); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Fixes", func(t *testing.T) {
		// The same fixes through both servers (an MQTT redelivery to the
		// other server of a shared subscription) are stored once.
		var fixes []telemetry.Fix
		for i := range 100 {
			fixes = append(fixes, telemetry.Fix{Unit: "U1", Seq: uint64(i), Time: t0.Add(time.Duration(i) * time.Second), Lat: 29, Lon: 105})
		}
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = servers[i%2].AppendFixes(ctx, fixes[i*10:i*10+30]) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := storetest.Track(t, servers[0], "U1", t0, t0.Add(time.Hour))
		if len(got) != 100 {
			t.Fatalf("%d fixes stored, want 100", len(got))
		}
	})
}

// TestAuditAppendOnly checks that the database refuses to change the
// audit log, and that the chain shows a change made behind its back.
func TestAuditAppendOnly(t *testing.T) {
	db := open(t, pgtest.DSN(t))
	ctx := t.Context()
	for i := range 3 {
		if _, err := db.AppendAudit(ctx, dispatch.AuditEntry{At: t0, Actor: "li", Action: "login", Detail: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ name, sql string }{
		{"update", `UPDATE audit SET actor = 'mallory' WHERE seq = 2`},
		{"delete", `DELETE FROM audit WHERE seq = 2`},
		{"truncate", `TRUNCATE audit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := postgres.Exec(ctx, db, tt.sql); err == nil {
				t.Fatalf("%s was allowed", tt.sql)
			}
		})
	}
	t.Run("behind its back", func(t *testing.T) {
		// A superuser can drop the trigger; the hash chain still tells.
		for _, q := range []string{`ALTER TABLE audit DISABLE TRIGGER audit_no_change`, `UPDATE audit SET actor = 'mallory' WHERE seq = 2`} {
			if err := postgres.Exec(ctx, db, q); err != nil {
				t.Fatal(err)
			}
		}
		log, err := db.AuditLog(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := dispatch.VerifyAudit(log); err == nil {
			t.Fatal("VerifyAudit accepted an altered log")
		}
	})
}

func TestPartitions(t *testing.T) {
	db := open(t, pgtest.DSN(t))
	ctx := t.Context()
	partitions := func() []string {
		t.Helper()
		names, err := postgres.QueryStrings(ctx, db, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'positions'::regclass ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	countIn := func(table string) int {
		t.Helper()
		n, err := postgres.QueryStrings(ctx, db, `SELECT count(*)::text FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		var c int
		fmt.Sscan(n[0], &c)
		return c
	}
	thisWeek := "positions_w" + monday(time.Now()).Format("20060102")
	if got := partitions(); !slices.Contains(got, thisWeek) || !slices.Contains(got, "positions_default") {
		t.Fatalf("partitions after Open: %v, want %s and the default among them", got, thisWeek)
	}

	// Fixes of a week with no partition land in the default partition ...
	future := time.Date(2031, 3, 5, 12, 0, 0, 0, time.UTC) // a Wednesday
	old := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	var fixes []telemetry.Fix
	for i := range 10 {
		fixes = append(fixes,
			telemetry.Fix{Unit: "U1", Seq: uint64(i), Time: future.Add(time.Duration(i) * time.Hour)},
			telemetry.Fix{Unit: "U1", Seq: uint64(100 + i), Time: old.Add(time.Duration(i) * time.Hour)})
	}
	if err := db.AppendFixes(ctx, fixes); err != nil {
		t.Fatal(err)
	}
	if n := countIn("positions_default"); n != 20 {
		t.Fatalf("default partition holds %d fixes, want 20", n)
	}
	// ... and move to their week's partition once maintenance creates it.
	if err := db.MaintainPartitions(ctx, future, 0); err != nil {
		t.Fatal(err)
	}
	if n := countIn("positions_w20310303"); n != 10 {
		t.Fatalf("the new partition holds %d fixes, want 10", n)
	}
	if n := countIn("positions_default"); n != 10 {
		t.Fatalf("default partition holds %d fixes, want 10", n)
	}
	if track := storetest.Track(t, db, "U1", future, future.Add(24*time.Hour)); len(track) != 10 {
		t.Fatalf("track after the move: %d fixes", len(track))
	}
	// Retention drops whole partitions and prunes the default one.
	if err := db.MaintainPartitions(ctx, future, 200*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := partitions(); slices.Contains(got, thisWeek) || !slices.Contains(got, "positions_w20310303") {
		t.Fatalf("partitions after retention: %v", got)
	}
	if n := countIn("positions_default"); n != 0 {
		t.Fatalf("default partition holds %d fixes after retention, want 0", n)
	}
	if n := countIn("positions"); n != 10 {
		t.Fatalf("%d fixes left, want 10", n)
	}
	latest, err := db.Latest(ctx)
	if err != nil || len(latest) != 1 || !latest[0].Time.Equal(future.Add(9*time.Hour)) {
		t.Fatalf("Latest after retention: %v, %v", latest, err)
	}
}

func monday(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// TestGroupCommit checks that concurrent callers share transactions, and
// that a batch holding a stored fix still stores the others.
func TestGroupCommit(t *testing.T) {
	db := open(t, pgtest.DSN(t))
	ctx := t.Context()
	const callers, per = 64, 10
	now := time.Now().UTC().Truncate(time.Microsecond)
	var wg sync.WaitGroup
	errs := make(chan error, 2*callers*per)
	for c := range callers {
		wg.Go(func() {
			for i := range per {
				f := telemetry.Fix{Unit: fmt.Sprintf("U%02d", c), Seq: uint64(i), Time: now.Add(time.Duration(i) * time.Second)}
				errs <- db.AppendFixes(ctx, []telemetry.Fix{f})
				errs <- db.AppendFixes(ctx, []telemetry.Fix{f, f}) // redelivered
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	commits, rows := postgres.CommitStats(db)
	if commits >= 2*callers*per {
		t.Errorf("%d commits for %d calls: no call shared a transaction", commits, 2*callers*per)
	}
	t.Logf("%d rows in %d commits", rows, commits)
	latest, err := db.Latest(ctx)
	if err != nil || len(latest) != callers {
		t.Fatalf("Latest: %d units, %v", len(latest), err)
	}
	for _, f := range latest {
		if track := storetest.Track(t, db, f.Unit, now, now.Add(time.Hour)); len(track) != per {
			t.Fatalf("%s: %d fixes", f.Unit, len(track))
		}
	}
}

func TestPing(t *testing.T) {
	db, err := postgres.Open(context.Background(), pgtest.DSN(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping an open database: %v", err)
	}
	db.Close()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("Ping after Close: no error")
	}
}

// TestStatementsPrepared: the served reads are prepared once per
// connection and reused (pgx's statement cache, the pool's default
// QueryExecModeCacheStatement), not parsed anew on every call.
func TestStatementsPrepared(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	sep := " "
	if strings.Contains(dsn, "://") {
		sep = "&"
		if !strings.Contains(dsn, "?") {
			sep = "?"
		}
	}
	db := open(t, dsn+sep+"pool_max_conns=1") // one connection: the one that reads
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	if err := db.CreateUser(ctx, &dispatch.User{Username: "li", Role: dispatch.RoleDispatcher, Jurisdiction: "510322", PasswordHash: "x", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSession(ctx, dispatch.Session{TokenHash: "h", Username: "li", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := db.Session(ctx, "h"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.User(ctx, "li"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := postgres.QueryStrings(ctx, db, `SELECT statement FROM pg_prepared_statements WHERE (statement LIKE '%FROM sessions%' OR statement LIKE '%FROM users%') AND statement NOT LIKE '%pg_prepared%'`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("prepared on the connection: %q; want the session and the user reads, once each", got)
	}
}
