package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/internal/groupcommit"
	"github.com/lifeline-ems/lifeline/telemetry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys (pg_advisory_lock takes a bigint; these are the
// ASCII of "llmigrat", "llaudit" and "llpartit").
const (
	lockMigrate    int64 = 0x6c6c6d6967726174
	lockAudit      int64 = 0x6c6c617564697400
	lockPartitions int64 = 0x6c6c706172746974
)

// Defaults.
const (
	defaultMaxConns = 16               // when the DSN has no pool_max_conns
	fixWriters      = 2                // group-commit writers (connections) for positions
	maxBatchRows    = 10000            // rows one writer gathers into one transaction
	commitTimeout   = 30 * time.Second // bound on one transaction of fixes
)

// DB is Lifeline's record in PostgreSQL, safe to share between several
// servers. It implements dispatch.Store, dispatch.Users, dispatch.Auditor
// and telemetry.History.
type DB struct {
	pool   *pgxpool.Pool
	fixes  *groupcommit.Committer
	units  unitSet // units known to have a row in position_units
	logger *slog.Logger

	copyFixes     func(ctx context.Context, tx pgx.Tx, rows []fixRow) error // the fast path; benchmarks swap it
	conflictUntil atomic.Int64                                              // unix ns until which fixes skip the fast path
}

var (
	_ dispatch.Store    = (*DB)(nil)
	_ dispatch.Users    = (*DB)(nil)
	_ dispatch.Auditor  = (*DB)(nil)
	_ telemetry.History = (*DB)(nil)
	_ dispatch.Tracks   = (*DB)(nil)
)

// Open connects to the PostgreSQL database of dsn (a URL or key=value
// string; pool_max_conns and the other pgxpool settings apply), migrates
// its schema, makes sure the partitions of the position history exist,
// and starts the writers of position history. Several servers may Open
// one database at once: migrations run one server at a time.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "postgres")
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DSN: %w", err) // pgx keeps the password out of its errors
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if err := migrate(ctx, cfg.ConnConfig, logger); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	db := &DB{pool: pool, logger: logger, units: unitSet{m: map[string]struct{}{}}}
	db.copyFixes = copyDirect
	if err := db.MaintainPartitions(ctx, time.Now(), 0); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.fixes = groupcommit.New(fixWriters, maxBatchRows, commitTimeout, logger, db.flushFixes)
	logger.Info("opened", "host", cfg.ConnConfig.Host, "database", cfg.ConnConfig.Database, "max_conns", cfg.MaxConns)
	return db, nil
}

// migrate brings the schema up to date with goose (its version table is
// goose_db_version), holding an advisory lock so that servers starting
// together migrate one after the other.
func migrate(ctx context.Context, cc *pgx.ConnConfig, logger *slog.Logger) error {
	sqlDB := stdlib.OpenDB(*cc)
	defer sqlDB.Close()
	lock, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer lock.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockMigrate)

	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	res, err := p.Up(ctx)
	for _, r := range res {
		logger.Info("migrated", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return err
}

// Ping reports whether the database answers, for readiness checks.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Close waits for the position writers to commit what they hold, then
// closes the pool.
func (db *DB) Close() error {
	db.fixes.Stop()
	db.pool.Close()
	return nil
}

// inTx runs fn in a transaction.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// PostgreSQL error codes Lifeline maps.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	deadlockDetected    = "40P01"
)

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// constraint maps constraint violations to dispatch codes: a duplicate
// key is a conflict, a reference to a missing row not found. Other errors
// are returned unchanged.
func constraint(err error, conflict, notFound string) error {
	switch pgCode(err) {
	case uniqueViolation:
		return dispatch.Errorf(dispatch.CodeConflict, "%s", conflict)
	case foreignKeyViolation:
		return dispatch.Errorf(dispatch.CodeNotFound, "%s", notFound)
	}
	return err
}

// utc is a time as read back: PostgreSQL keeps microseconds, pgx returns
// local time.
func utc(t time.Time) time.Time { return t.UTC() }

// nullTime is a zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ceilMicro rounds t up to the microsecond: a stored time s is >= t
// exactly when s >= ceilMicro(t).
func ceilMicro(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); !c.Equal(t) {
		return c.Add(time.Microsecond)
	}
	return t
}
