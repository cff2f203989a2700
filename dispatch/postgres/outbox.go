package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const commandColumns = `seq, id, unit, payload, state, attempts, created_at, expires_at, sent_at, settled_at`

func scanCommand(row pgx.Row) (dispatch.OutboxCommand, error) {
	var (
		c             dispatch.OutboxCommand
		payload       string
		sent, settled *time.Time
	)
	if err := row.Scan(&c.Seq, &c.ID, &c.Unit, &payload, &c.State, &c.Attempts, &c.CreatedAt, &c.ExpiresAt, &sent, &settled); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(payload), &c.Command); err != nil {
		return c, fmt.Errorf("command %s: payload: %w", c.ID, err)
	}
	c.CreatedAt, c.ExpiresAt = utc(c.CreatedAt), utc(c.ExpiresAt)
	if sent != nil {
		c.SentAt = utc(*sent)
	}
	if settled != nil {
		c.SettledAt = utc(*settled)
	}
	return c, nil
}

// insertCommands adds new commands to the outbox inside a decision's transaction.
func insertCommands(ctx context.Context, tx pgx.Tx, cmds []dispatch.OutboxCommand) error {
	for _, c := range cmds {
		payload, err := json.Marshal(c.Command)
		if err != nil {
			return fmt.Errorf("command %s: %w", c.ID, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO outbox (id, unit, type, assignment, payload, state, attempts, created_at, expires_at, sent_at, settled_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			c.ID, c.Unit, c.Command.Type, c.Command.Assignment, string(payload), c.State, c.Attempts,
			c.CreatedAt, c.ExpiresAt, nullTime(c.SentAt), nullTime(c.SettledAt))
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
		q, args = q+` AND unit = $1`, append(args, unit)
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY seq`, args...)
	out, err := collect(rows, err, scanCommand)
	if err != nil {
		return nil, fmt.Errorf("pending commands: %w", err)
	}
	return out, nil
}

// UpdateCommand implements dispatch.Outbox: a compare-and-set on the
// command being pending, so that two servers settle a command once.
func (db *DB) UpdateCommand(ctx context.Context, c dispatch.OutboxCommand) error {
	tag, err := db.pool.Exec(ctx, `UPDATE outbox SET state = $2, attempts = $3, sent_at = $4, settled_at = $5
		WHERE id = $1 AND state = 'pending'`, c.ID, c.State, c.Attempts, nullTime(c.SentAt), nullTime(c.SettledAt))
	if err != nil {
		return fmt.Errorf("update command %s: %w", c.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var state string
	err = db.pool.QueryRow(ctx, `SELECT state FROM outbox WHERE id = $1`, c.ID).Scan(&state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return dispatch.Errorf(dispatch.CodeNotFound, "command %q not found", c.ID)
	case err != nil:
		return fmt.Errorf("update command %s: %w", c.ID, err)
	}
	return dispatch.Errorf(dispatch.CodeConflict, "command %s is %s already", c.ID, state)
}

// HospitalStates implements dispatch.HospitalStates.
func (db *DB) HospitalStates(ctx context.Context) ([]dispatch.HospitalState, error) {
	rows, err := db.pool.Query(ctx, `SELECT hospital, diversion, ends_at, reason, set_by, updated_at FROM hospital_states ORDER BY hospital`)
	out, err := collect(rows, err, func(row pgx.Row) (dispatch.HospitalState, error) {
		var (
			h    dispatch.HospitalState
			ends *time.Time
		)
		err := row.Scan(&h.Hospital, &h.Diversion, &ends, &h.Reason, &h.By, &h.UpdatedAt)
		h.UpdatedAt = utc(h.UpdatedAt)
		if ends != nil {
			h.Until = utc(*ends)
		}
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("hospital states: %w", err)
	}
	return out, nil
}

// SetHospitalState implements dispatch.HospitalStates.
func (db *DB) SetHospitalState(ctx context.Context, st dispatch.HospitalState) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO hospital_states (hospital, diversion, ends_at, reason, set_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (hospital) DO UPDATE SET diversion = excluded.diversion, ends_at = excluded.ends_at,
			reason = excluded.reason, set_by = excluded.set_by, updated_at = excluded.updated_at`,
		st.Hospital, st.Diversion, nullTime(st.Until), st.Reason, st.By, st.UpdatedAt)
	if err != nil {
		return fmt.Errorf("set hospital state %s: %w", st.Hospital, err)
	}
	return nil
}
