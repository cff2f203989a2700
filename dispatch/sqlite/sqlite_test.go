package sqlite_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/sqlite"
	"github.com/lifeline-ems/lifeline/dispatch/storetest"
	"github.com/lifeline-ems/lifeline/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(tb testing.TB, dir string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := open(t, t.TempDir())
		return storetest.Stores{Store: db, Users: db, Audit: db, History: db}
	})
}

// TestReopen checks that what was acknowledged survives a close and a
// reopen, and that migrating an up-to-date file is a no-op.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	db, err := sqlite.Open(ctx, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inc := &dispatch.Incident{ID: "INC-1", Priority: 1, Category: dispatch.CatStroke, Status: dispatch.IncidentOpen, CreatedAt: t0, UpdatedAt: t0}
	if _, _, err := db.CreateIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendFixes(ctx, []telemetry.Fix{{Unit: "U1", Seq: 1, Time: t0, Lat: 29, Lon: 105}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAudit(ctx, dispatch.AuditEntry{At: t0, Actor: "system", Action: "start"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendFixes(ctx, []telemetry.Fix{{Unit: "U1", Seq: 2, Time: t0}}); dispatch.ErrorCode(err) != dispatch.CodeUnavailable {
		t.Fatalf("AppendFixes after Close: %v, want unavailable", err)
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.File)); err != nil {
		t.Fatal(err)
	}

	db = open(t, dir)
	if _, err := db.Incident(ctx, "INC-1"); err != nil {
		t.Fatal(err)
	}
	latest, err := db.Latest(ctx)
	if err != nil || len(latest) != 1 {
		t.Fatalf("Latest after reopen: %v, %v", latest, err)
	}
	log, err := db.AuditLog(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dispatch.VerifyAudit(log); err != nil || len(log) != 1 {
		t.Fatalf("audit after reopen: %d entries, %v", len(log), err)
	}
}

func TestPrunePositions(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	var fixes []telemetry.Fix
	for i := range 10 {
		for _, u := range []string{"U1", "U2"} {
			fixes = append(fixes, telemetry.Fix{Unit: u, Seq: uint64(i), Time: t0.Add(time.Duration(i) * 24 * time.Hour)})
		}
	}
	if err := db.AppendFixes(ctx, fixes); err != nil {
		t.Fatal(err)
	}
	n, err := db.PrunePositions(ctx, t0.Add(4*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 8 {
		t.Fatalf("pruned %d fixes, want 8", n)
	}
	track := storetest.Track(t, db, "U1", t0, t0.Add(30*24*time.Hour))
	if len(track) != 6 || track[0].Seq != 4 {
		t.Fatalf("track after prune: %d fixes from seq %d, want 6 from 4", len(track), track[0].Seq)
	}
}

// TestAuditAppendOnly checks that the database itself refuses to change
// the audit log.
func TestAuditAppendOnly(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	ctx := t.Context()
	if _, err := db.AppendAudit(ctx, dispatch.AuditEntry{At: time.Now(), Actor: "li", Action: "login"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, sql string }{
		{"update", `UPDATE audit SET actor = 'mallory'`},
		{"delete", `DELETE FROM audit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sqlite.Exec(ctx, db, tt.sql); err == nil {
				t.Fatalf("%s was allowed", tt.sql)
			}
		})
	}
	log, err := db.AuditLog(ctx, 0, 0)
	if err != nil || len(log) != 1 || log[0].Actor != "li" {
		t.Fatalf("audit changed: %+v, %v", log, err)
	}
}

// TestGroupCommit checks that concurrent callers share transactions.
func TestGroupCommit(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	const callers, per = 64, 10
	t0 := time.Now().UTC()
	var wg sync.WaitGroup
	errs := make(chan error, callers*per)
	for c := range callers {
		wg.Go(func() {
			for i := range per {
				unit := "U" + string(rune('A'+c%26)) + string(rune('A'+c/26))
				errs <- db.AppendFixes(ctx, []telemetry.Fix{{Unit: unit, Seq: uint64(i), Time: t0.Add(time.Duration(i) * time.Second)}})
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
	commits, rows := sqlite.CommitStats(db)
	if rows != callers*per {
		t.Fatalf("%d rows committed, want %d", rows, callers*per)
	}
	if commits >= rows {
		t.Errorf("%d commits for %d rows: no call shared a transaction", commits, rows)
	}
	t.Logf("%d rows in %d commits", rows, commits)
}

func TestPing(t *testing.T) {
	db, err := sqlite.Open(context.Background(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping an open database: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("Ping after Close: no error")
	}
}

// TestSessionMark: the sessions mark that one process reads from memory
// moves when another process on the same directory (lifelined admin
// beside the server) deletes a session or updates a user, and stands
// otherwise.
func TestSessionMark(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	server, admin := open(t, dir), open(t, dir)
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	u := &dispatch.User{Username: "li", Role: dispatch.RoleDispatcher, Jurisdiction: "510322", PasswordHash: "x", CreatedAt: t0, UpdatedAt: t0}
	if err := server.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"a", "b", "c"} {
		if err := server.CreateSession(ctx, dispatch.Session{TokenHash: h, Username: "li", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		do    func() error
		moves bool
	}{
		{"read a session", func() error { _, err := admin.Session(ctx, "a"); return err }, false},
		{"create a session", func() error {
			return admin.CreateSession(ctx, dispatch.Session{TokenHash: "d", Username: "li", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
		}, false},
		{"delete a session", func() error { return admin.DeleteSession(ctx, "a") }, true},
		{"update a user", func() error { u.Disabled = true; return admin.UpdateUser(ctx, u) }, true},
		{"delete a user's sessions", func() error { _, err := admin.DeleteSessions(ctx, "li"); return err }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := server.SessionMark()
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
			if moved := server.SessionMark() != before; moved != tt.moves {
				t.Fatalf("the server's mark moved: %v, want %v", moved, tt.moves)
			}
		})
	}
	t.Run("cut short", func(t *testing.T) { // by hand, or a broken disk: never trusted, never a crash
		if err := os.Truncate(filepath.Join(dir, sqlite.MarkFile), 0); err != nil {
			t.Fatal(err)
		}
		if a, b := server.SessionMark(), server.SessionMark(); a == b {
			t.Fatalf("an unreadable mark read %d twice: a remembered session would be trusted", a)
		}
	})
}
