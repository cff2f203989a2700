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
	"github.com/lifeline-ems/lifeline/dispatch/internal/writable"
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
	pool   pool
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
	db := &DB{pool: newPool(pool), logger: logger, units: unitSet{m: map[string]struct{}{}}}
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

// Ping reports whether the database answers and can write, for
// readiness checks: after a write failed for want of room or of a working
// disk (storeError), until a probe of probeSize bytes is written again
// (see writable.Latch).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return err
	}
	return db.pool.writes.Check(ctx, db.probe)
}

// probeSize is what the write probe writes: more than a relation's
// extension and a WAL segment's worth of records.
const probeSize = 1 << 20

// probe writes probeSize bytes into write_probe, whose column is stored
// uncompressed, and rolls the transaction back: PostgreSQL has to find
// room for them (extending the table, writing WAL) all the same.
func (db *DB) probe(ctx context.Context) error {
	tx, err := db.pool.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `INSERT INTO write_probe (pad) SELECT string_agg(md5(random()::text), '') FROM generate_series(1, $1)`, probeSize/32); err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	return nil
}

// Close waits for the position writers to commit what they hold, then
// closes the pool.
func (db *DB) Close() error {
	db.fixes.Stop()
	db.pool.Close()
	return nil
}

// inTx runs fn in a transaction, its errors mapped (storeError).
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.pool.storeError(pgx.BeginFunc(ctx, db.pool.Pool, fn), true)
}

// pool is the connection pool with what PostgreSQL says mapped to
// dispatch codes on the way out (storeError): the store's code uses it as
// it would a *pgxpool.Pool, and every statement's error is mapped.
type pool struct {
	*pgxpool.Pool
	writes *writable.Latch
}

func newPool(p *pgxpool.Pool) pool { return pool{Pool: p, writes: new(writable.Latch)} }

// Exec runs a write.
func (p pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := p.Pool.Exec(ctx, sql, args...)
	return tag, p.storeError(err, true)
}

// Query runs a read.
func (p pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := p.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, p.storeError(err, false)
	}
	return rows{Rows: r, p: p}, nil
}

// QueryRow runs a read of one row.
func (p pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return row{Row: p.Pool.QueryRow(ctx, sql, args...), p: p}
}

type rows struct {
	pgx.Rows
	p pool
}

func (r rows) Err() error { return r.p.storeError(r.Rows.Err(), false) }

type row struct {
	pgx.Row
	p pool
}

func (r row) Scan(dest ...any) error { return r.p.storeError(r.Row.Scan(dest...), false) }

// More PostgreSQL error codes Lifeline maps (see storeError).
const (
	diskFull            = "53100"
	ioError             = "58030"
	invalidByteSequence = "22021" // a NUL in text, which PostgreSQL cannot store
	untranslatable      = "22P05"
)

// storeError maps what PostgreSQL says to a dispatch code where one
// applies, keeping err in the chain. A full disk or an I/O error is
// unavailable and, for a write, sets the write latch that Ping reports;
// the server short of other resources (class 53), shutting down or not
// taking connections (57P01-57P03), or the connection to it failing
// (class 08, a failed connect) is unavailable; text it cannot store is
// invalid (the API refuses it first: telemetry.CheckText). Other errors
// are returned unchanged.
func (p pool) storeError(err error, write bool) error {
	if err == nil {
		return nil
	}
	code := pgCode(err)
	var connect *pgconn.ConnectError
	switch {
	case code == diskFull || code == ioError:
		if write {
			p.writes.Fail(err)
		}
		return unavailable(err)
	case strings.HasPrefix(code, "53"), strings.HasPrefix(code, "08"),
		code == "57P01", code == "57P02", code == "57P03", errors.As(err, &connect):
		return unavailable(err)
	case code == invalidByteSequence || code == untranslatable:
		return fmt.Errorf("%w: %w", dispatch.Errorf(dispatch.CodeInvalid, "text holds a character the record cannot store"), err)
	}
	return err
}

// unavailable is err as a dispatch error a client may retry (503).
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", dispatch.Errorf(dispatch.CodeUnavailable, "the record cannot be written now; try again shortly"), err)
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
