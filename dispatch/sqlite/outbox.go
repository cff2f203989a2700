package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const commandColumns = `seq, id, unit, payload, state, attempts, created_at, expires_at, sent_at, settled_at`

func scanCommand(s scanner) (dispatch.OutboxCommand, error) {
	var (
		c                dispatch.OutboxCommand
		payload          string
		created, expires int64
		sent, settled    sql.NullInt64
	)
	if err := s.Scan(&c.Seq, &c.ID, &c.Unit, &payload, &c.State, &c.Attempts, &created, &expires, &sent, &settled); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(payload), &c.Command); err != nil {
		return c, fmt.Errorf("command %s: payload: %w", c.ID, err)
	}
	c.CreatedAt, c.ExpiresAt, c.SentAt, c.SettledAt = fromMicros(created), fromMicros(expires), fromNullMicros(sent), fromNullMicros(settled)
	return c, nil
}

// insertCommands adds new commands to the outbox inside a decision's transaction.
func insertCommands(ctx context.Context, tx *sql.Tx, cmds []dispatch.OutboxCommand) error {
	for _, c := range cmds {
		payload, err := json.Marshal(c.Command)
		if err != nil {
			return fmt.Errorf("command %s: %w", c.ID, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO outbox (id, unit, type, assignment, payload, state, attempts, created_at, expires_at, sent_at, settled_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Unit, c.Command.Type, c.Command.Assignment, string(payload), c.State, c.Attempts,
			micros(c.CreatedAt), micros(c.ExpiresAt), nullMicros(c.SentAt), nullMicros(c.SettledAt))
		if err := constraint(err, fmt.Sprintf("command %s exists", c.ID), ""); err != nil {
			return err
		}
	}
	return nil
}

// PendingCommands implements dispatch.Outbox.
func (db *DB) PendingCommands(ctx context.Context, unit string) ([]dispatch.OutboxCommand, error) {
	q, args := `SELECT `+commandColumns+` FROM outbox WHERE state = 'pending'`, []any{}
	if unit != "" {
		q, args = q+` AND unit = ?`, append(args, unit)
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY seq`, args...)
	out, err := collect(rows, err, scanCommand)
	if err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	return out, nil
}

// UpdateCommand implements dispatch.Outbox.
func (db *DB) UpdateCommand(ctx context.Context, c dispatch.OutboxCommand) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = ?, sent_at = ?, settled_at = ?
			WHERE id = ? AND state = 'pending'`, c.State, c.Attempts, nullMicros(c.SentAt), nullMicros(c.SettledAt), c.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var state string
		switch err := tx.QueryRowContext(ctx, `SELECT state FROM outbox WHERE id = ?`, c.ID).Scan(&state); err {
		case nil:
			return dispatch.Errorf(dispatch.CodeConflict, "command %s is %s already", c.ID, state)
		case sql.ErrNoRows:
			return dispatch.Errorf(dispatch.CodeNotFound, "command %q not found", c.ID)
		default:
			return err
		}
	})
	if err != nil {
		return fmt.Errorf("update command %s: %w", c.ID, err)
	}
	return nil
}

// HospitalStates implements dispatch.HospitalStates.
func (db *DB) HospitalStates(ctx context.Context) ([]dispatch.HospitalState, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT hospital, diversion, ends_at, reason, set_by, updated_at FROM hospital_states ORDER BY hospital`)
	out, err := collect(rows, err, func(s scanner) (dispatch.HospitalState, error) {
		var (
			h       dispatch.HospitalState
			ends    sql.NullInt64
			updated int64
		)
		err := s.Scan(&h.Hospital, &h.Diversion, &ends, &h.Reason, &h.By, &updated)
		h.Until, h.UpdatedAt = fromNullMicros(ends), fromMicros(updated)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("hospital states: %w", err)
	}
	return out, nil
}

// SetHospitalState implements dispatch.HospitalStates.
func (db *DB) SetHospitalState(ctx context.Context, st dispatch.HospitalState) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO hospital_states (hospital, diversion, ends_at, reason, set_by, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (hospital) DO UPDATE SET diversion = excluded.diversion, ends_at = excluded.ends_at,
			reason = excluded.reason, set_by = excluded.set_by, updated_at = excluded.updated_at`,
		st.Hospital, st.Diversion, nullMicros(st.Until), st.Reason, st.By, micros(st.UpdatedAt))
	if err != nil {
		return fmt.Errorf("set hospital state %s: %w", st.Hospital, err)
	}
	return nil
}
