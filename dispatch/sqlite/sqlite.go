package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/internal/groupcommit"
	"github.com/lifeline-ems/lifeline/dispatch/internal/writable"
	"github.com/lifeline-ems/lifeline/telemetry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// File is the name of the database file in the data directory.
const File = "lifeline.db"

// Group commit of position fixes.
const (
	maxBatchRows  = 5000             // rows the writer gathers into one transaction
	commitTimeout = 30 * time.Second // bound on one transaction
	readConns     = 4
)

// DB is Lifeline's embedded durable record. It implements dispatch.Store,
// dispatch.Users, dispatch.Auditor and telemetry.History.
type DB struct {
	write  *sql.DB // one connection; every transaction BEGIN IMMEDIATE
	read   *sql.DB // read-only connections
	fixes  *groupcommit.Committer
	mark   *mark  // the sessions mark, shared with every process on the directory
	reads  *reads // the served reads, prepared
	logger *slog.Logger
	dir    string         // the data directory
	writes writable.Latch // set while writes fail for want of room or disk
}

var (
	_ dispatch.SessionMarker = (*DB)(nil)
	_ dispatch.Store         = (*DB)(nil)
	_ dispatch.Users         = (*DB)(nil)
	_ dispatch.Auditor       = (*DB)(nil)
	_ telemetry.History      = (*DB)(nil)
	_ dispatch.Tracks        = (*DB)(nil)
)

// Open opens (creating it if missing) the database File under dir,
// migrates its schema and starts the writer of position history. Close
// releases it.
func Open(ctx context.Context, dir string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "sqlite")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: data directory: %w", err)
	}
	path := filepath.Join(dir, File)
	pragmas := url.Values{"_pragma": {
		"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)",
	}}
	write, err := sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	db := &DB{write: write, logger: logger, dir: dir}
	if err := db.migrate(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	pragmas.Add("_pragma", "query_only(1)")
	db.read, err = sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.read.SetMaxOpenConns(readConns)
	db.read.SetMaxIdleConns(readConns)
	if db.reads, err = prepareReads(ctx, db.read); err != nil {
		db.read.Close()
		write.Close()
		return nil, err
	}
	if db.mark, err = openMark(dir); err != nil {
		db.reads.close()
		db.read.Close()
		write.Close()
		return nil, err
	}
	// One writer goroutine: SQLite has one writer, and it is this connection.
	db.fixes = groupcommit.New(1, maxBatchRows, commitTimeout, logger, db.flushFixes)
	logger.Info("opened", "path", path)
	return db, nil
}

func (db *DB) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	res, err := p.Up(ctx)
	for _, r := range res {
		db.logger.Info("migrated", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return err
}

// Backup writes a consistent copy of the whole database to path (which
// must not exist) with VACUUM INTO, while the server keeps running: the
// copy is a point in time, and writers wait only while it is written.
func (db *DB) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("sqlite: backup: %s exists", path)
	}
	if _, err := db.write.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", path, err)
	}
	return nil
}

// Ping reports whether the database answers and can write, for
// readiness checks: after a write failed for want of room or of a working
// disk, until the data directory takes a probe of probeSize bytes again
// (see writable.Latch).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return err
	}
	return db.writes.Check(ctx, db.probe)
}

// probeSize is what the write probe writes: room for a good many
// transactions, and more than a page of SQLite's.
const probeSize = 1 << 20

// probe writes probeSize bytes of noise (a compressing file system must
// not make them smaller) to a file in the data directory, syncs and
// removes it.
func (db *DB) probe(ctx context.Context) error {
	f, err := os.CreateTemp(db.dir, ".write-probe-*")
	if err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	defer os.Remove(f.Name())
	buf := make([]byte, probeSize)
	_, _ = rand.Read(buf)
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	return ctx.Err()
}

// Close waits for the position writer to commit what it holds, then
// closes the database.
func (db *DB) Close() error {
	db.fixes.Stop()
	return errors.Join(db.reads.close(), db.read.Close(), db.write.Close(), db.mark.close())
}

// SessionMark implements dispatch.SessionMarker: it changes whenever
// any process on this data directory deletes a session or updates a
// user, and costs one read of a small file, no query.
func (db *DB) SessionMark() uint64 { return db.mark.load() }

// sessionsChanged moves the sessions mark after a change of sessions or
// users committed; when it cannot, servers on the directory notice the
// change only when their memory of sessions expires (a few seconds).
func (db *DB) sessionsChanged() {
	if err := db.mark.move(); err != nil {
		db.logger.Warn("move the sessions mark: servers notice the change within seconds, not at once", "err", err)
	}
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE: SQLite's one
// writer lock is taken at the start, so what fn reads stays true until it
// commits).
//
// Every write goes through it, so its errors are mapped here (storeError).
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return db.storeError(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return db.storeError(err)
	}
	return db.storeError(tx.Commit())
}

// storeError maps what SQLite says of a write to a dispatch code where
// one applies, keeping err in the chain: a full disk, an I/O error, a
// database gone read-only or that cannot be opened is unavailable (and
// sets the write latch that Ping reports), as is the writer lock still
// busy after busy_timeout. Other errors are returned unchanged.
func (db *DB) storeError(err error) error {
	var e *sqlite.Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	switch e.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		db.writes.Fail(err)
		return unavailable(err)
	case sqlite3.SQLITE_BUSY:
		return unavailable(err)
	}
	return err
}

// unavailable is err as a dispatch error a client may retry (503).
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", dispatch.Errorf(dispatch.CodeUnavailable, "the record cannot be written now; try again shortly"), err)
}

// constraint maps SQLite's constraint violations to dispatch codes: a
// duplicate key is a conflict, a reference to a missing row not found.
// Other errors are returned unchanged.
func constraint(err error, conflict, notFound string) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return dispatch.Errorf(dispatch.CodeConflict, "%s", conflict)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return dispatch.Errorf(dispatch.CodeNotFound, "%s", notFound)
	}
	return err
}

// Times are stored as microseconds since the Unix epoch; zero is NULL
// where a time is optional.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t time.Time) sql.NullInt64 {
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: !t.IsZero()}
}

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
