package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const auditColumns = `seq, at, actor, action, subject, detail, prev, hash`

func scanAudit(row pgx.Row) (dispatch.AuditEntry, error) {
	var (
		e      dispatch.AuditEntry
		detail *string
	)
	if err := row.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.Subject, &detail, &e.Prev, &e.Hash); err != nil {
		return e, err
	}
	e.At = utc(e.At)
	if detail != nil {
		e.Detail = json.RawMessage(*detail)
	}
	return e, nil
}

// AppendAudit implements dispatch.Auditor. Appenders on every server
// serialise on a transaction-scoped advisory lock; holding it, the
// transaction reads the last entry, seals e after it and inserts it, so
// the chain never forks (and the primary key on seq would refuse a fork
// anyway). A Detail that is not JSON is invalid.
func (db *DB) AppendAudit(ctx context.Context, e dispatch.AuditEntry) (dispatch.AuditEntry, error) {
	if err := e.Validate(); err != nil {
		return dispatch.AuditEntry{}, err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAudit); err != nil {
			return err
		}
		last, err := scanAudit(tx.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq DESC LIMIT 1`))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			e.Seal(nil)
		case err != nil:
			return err
		default:
			e.Seal(&last)
		}
		var detail *string
		if len(e.Detail) > 0 {
			s := string(e.Detail)
			detail = &s
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.Seq, e.At, e.Actor, e.Action, e.Subject, detail, e.Prev, e.Hash)
		return err
	})
	if err != nil {
		return dispatch.AuditEntry{}, fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	if len(e.Detail) == 0 {
		e.Detail = nil
	}
	return e, nil
}

// AuditLog implements dispatch.Auditor.
func (db *DB) AuditLog(ctx context.Context, after int64, limit int) ([]dispatch.AuditEntry, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2`, after, lim)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}
