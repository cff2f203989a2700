package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// reads are the statements a served API call may make when memory
// cannot answer it (a session and its user, a call, the call's
// assignments), prepared once: the driver otherwise parses and plans a
// query string anew on every call (BenchmarkServedReads).
type reads struct {
	session, user, incident, assignments *sql.Stmt
}

func prepareReads(ctx context.Context, db *sql.DB) (*reads, error) {
	var (
		r    reads
		errs []error
	)
	prepare := func(q string) *sql.Stmt {
		s, err := db.PrepareContext(ctx, q)
		errs = append(errs, err)
		return s
	}
	r.session = prepare(`SELECT username, created_at, expires_at FROM sessions WHERE token_hash = ?`)
	r.user = prepare(`SELECT ` + userColumns + ` FROM users WHERE username = ?`)
	r.incident = prepare(`SELECT ` + incidentColumns + ` FROM incidents WHERE id = ?`)
	r.assignments = prepare(`SELECT ` + assignmentColumns + ` FROM assignments WHERE incident = ? ORDER BY created_at, id`)
	if err := errors.Join(errs...); err != nil {
		r.close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	return &r, nil
}

func (r *reads) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{r.session, r.user, r.incident, r.assignments} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
