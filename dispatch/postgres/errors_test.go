package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/postgres"
	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
)

// TestStoreErrors: what PostgreSQL says becomes the API's answer: text it
// cannot store is invalid (400), a full disk unavailable (503), and
// readiness fails from a write that failed for want of room until a probe
// writes again.
func TestStoreErrors(t *testing.T) {
	db := open(t, pgtest.DSN(t))
	ctx := context.Background()
	if err := postgres.Exec(ctx, db, `SELECT $1::text`, "a\x00"); !errors.Is(err, dispatch.ErrInvalid) {
		t.Errorf("a NUL: %v, want invalid", err)
	}
	for _, tt := range []struct {
		code  string
		write bool
		want  error
		ready bool
	}{
		{"53100", false, dispatch.ErrUnavailable, true}, // a read: the latch is for writes
		{"53300", true, dispatch.ErrUnavailable, true},  // too many connections: not the disk
		{"57P03", true, dispatch.ErrUnavailable, true},
		{"23505", true, nil, true},
		{"58030", true, dispatch.ErrUnavailable, false},
	} {
		cause := &pgconn.PgError{Code: tt.code, Message: "test"}
		err := postgres.StoreError(db, cause, tt.write)
		if tt.want != nil && !errors.Is(err, tt.want) || tt.want == nil && err != error(cause) {
			t.Errorf("%s: %v, want %v", tt.code, err, tt.want)
		}
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != tt.code {
			t.Errorf("%s: the cause is lost: %v", tt.code, err)
		}
		if tt.ready {
			if err := db.Ping(ctx); err != nil {
				t.Errorf("%s: Ping %v, want ready", tt.code, err)
			}
		}
	}

	// Writes failed for want of room: not ready while the probe fails too.
	postgres.SetProbeEvery(db, time.Millisecond)
	if err := postgres.Exec(ctx, db, `ALTER TABLE write_probe RENAME TO write_probe_away`); err != nil {
		t.Fatal(err)
	}
	_ = postgres.StoreError(db, &pgconn.PgError{Code: "53100", Message: "could not extend file: No space left on device"}, true)
	if err := db.Ping(ctx); err == nil {
		t.Fatal("ready while writes fail and the probe cannot write")
	}
	if err := postgres.Exec(ctx, db, `ALTER TABLE write_probe_away RENAME TO write_probe`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("not ready once the probe writes again: %v", err)
	}
}
