package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const auditColumns = `seq, at, actor, action, subject, detail, prev, hash`

func scanAudit(s scanner) (dispatch.AuditEntry, error) {
	var (
		e      dispatch.AuditEntry
		at     int64
		detail sql.NullString
	)
	if err := s.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Subject, &detail, &e.Prev, &e.Hash); err != nil {
		return e, err
	}
	e.At = fromMicros(at)
	if detail.Valid {
		e.Detail = json.RawMessage(detail.String)
	}
	return e, nil
}

// AppendAudit implements dispatch.Auditor. The entry is sealed after the
// last one inside the write transaction that stores it; SQLite's single
// writer serialises appenders, so the chain cannot fork. A Detail that is
// not JSON is invalid.
func (db *DB) AppendAudit(ctx context.Context, e dispatch.AuditEntry) (dispatch.AuditEntry, error) {
	if err := e.Validate(); err != nil {
		return dispatch.AuditEntry{}, err
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		last, err := scanAudit(tx.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq DESC LIMIT 1`))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			e.Seal(nil)
		case err != nil:
			return err
		default:
			e.Seal(&last)
		}
		detail := sql.NullString{String: string(e.Detail), Valid: len(e.Detail) > 0}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, micros(e.At), e.Actor, e.Action, e.Subject, detail, e.Prev, e.Hash)
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
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}
