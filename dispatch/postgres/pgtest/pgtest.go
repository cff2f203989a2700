package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestURLEnv names the environment variable with the DSN of the
// PostgreSQL server tests use; DefaultTestURL is used without it.
const (
	TestURLEnv     = "LIFELINE_TEST_POSTGRES_URL"
	DefaultTestURL = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

// DSN is for tests. It creates a fresh database lifeline_test_<random>
// on the test server (TestURLEnv, else DefaultTestURL), drops it (WITH
// (FORCE)) when tb ends, and returns its DSN, so that tests running in
// parallel, or again, never share state. Close what you Open on it in a
// Cleanup registered after TestDSN returns. When the server cannot be
// reached the test fails, saying how to bring it up.
func DSN(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(TestURLEnv)
	if admin == "" {
		admin = DefaultTestURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("PostgreSQL for tests is not reachable at %s (set %s, or run `make services`): %v", redact(admin), TestURLEnv, err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 8)
	rand.Read(b)
	name := "lifeline_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			_, err = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			conn.Close(ctx)
		}
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// withDatabase returns dsn (a URL or key=value string) naming database name.
func withDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return strings.TrimSpace(dsn) + " dbname=" + name // a later key wins
}

// redact hides the password of a URL DSN.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return "the configured server"
}
