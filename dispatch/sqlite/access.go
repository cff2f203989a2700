package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const userColumns = `username, role, jurisdiction, password_hash, disabled, created_at, updated_at`

func scanUser(s scanner) (*dispatch.User, error) {
	var (
		u                dispatch.User
		created, updated int64
	)
	if err := s.Scan(&u.Username, &u.Role, &u.Jurisdiction, &u.PasswordHash, &u.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

// CreateUser implements dispatch.Users.
func (db *DB) CreateUser(ctx context.Context, u *dispatch.User) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.Username, u.Role, u.Jurisdiction, u.PasswordHash, u.Disabled, micros(u.CreatedAt), micros(u.UpdatedAt))
		return constraint(err, fmt.Sprintf("user %q exists", u.Username), "")
	})
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Username, err)
	}
	return nil
}

// User implements dispatch.Users.
func (db *DB) User(ctx context.Context, username string) (*dispatch.User, error) {
	u, err := scanUser(db.reads.user.QueryRowContext(ctx, username))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "user %q not found", username)
	}
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", username, err)
	}
	return u, nil
}

// UpdateUser implements dispatch.Users.
func (db *DB) UpdateUser(ctx context.Context, u *dispatch.User) error {
	var res sql.Result
	err := db.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = tx.ExecContext(ctx, `UPDATE users SET role = ?, jurisdiction = ?, password_hash = ?, disabled = ?,
			created_at = ?, updated_at = ? WHERE username = ?`,
			u.Role, u.Jurisdiction, u.PasswordHash, u.Disabled, micros(u.CreatedAt), micros(u.UpdatedAt), u.Username)
		return err
	})
	db.sessionsChanged()
	return affected(res, err, "update user "+u.Username, dispatch.Errorf(dispatch.CodeNotFound, "user %q not found", u.Username))
}

// ListUsers implements dispatch.Users: by username.
func (db *DB) ListUsers(ctx context.Context) ([]*dispatch.User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	out, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

// SetUnitCredential implements dispatch.Users.
func (db *DB) SetUnitCredential(ctx context.Context, c dispatch.UnitCredential) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO unit_credentials (unit, password_hash, rotated_at) VALUES (?, ?, ?)
			ON CONFLICT (unit) DO UPDATE SET password_hash = excluded.password_hash, rotated_at = excluded.rotated_at`,
			c.Unit, c.PasswordHash, micros(c.RotatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("credential of unit %s: %w", c.Unit, err)
	}
	return nil
}

// UnitCredential implements dispatch.Users.
func (db *DB) UnitCredential(ctx context.Context, unit string) (*dispatch.UnitCredential, error) {
	var (
		c       = dispatch.UnitCredential{Unit: unit}
		rotated int64
	)
	err := db.read.QueryRowContext(ctx, `SELECT password_hash, rotated_at FROM unit_credentials WHERE unit = ?`, unit).
		Scan(&c.PasswordHash, &rotated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "no credential for unit %q", unit)
	}
	if err != nil {
		return nil, fmt.Errorf("credential of unit %s: %w", unit, err)
	}
	c.RotatedAt = fromMicros(rotated)
	return &c, nil
}

// CreateSession implements dispatch.Users: the user must exist, and a
// token hash already in use is a conflict.
func (db *DB) CreateSession(ctx context.Context, s dispatch.Session) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, username, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			s.TokenHash, s.Username, micros(s.CreatedAt), micros(s.ExpiresAt))
		return constraint(err, "session exists", fmt.Sprintf("user %q not found", s.Username))
	})
	if err != nil {
		return fmt.Errorf("session of %s: %w", s.Username, err)
	}
	return nil
}

// Session implements dispatch.Users. Expiry is the caller's to check.
func (db *DB) Session(ctx context.Context, tokenHash string) (*dispatch.Session, error) {
	var (
		s                = dispatch.Session{TokenHash: tokenHash}
		created, expires int64
	)
	err := db.reads.session.QueryRowContext(ctx, tokenHash).Scan(&s.Username, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "session not found")
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &s, nil
}

// DeleteSession implements dispatch.Users; deleting an unknown session is not found.
func (db *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	var res sql.Result
	err := db.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
		return err
	})
	db.sessionsChanged()
	return affected(res, err, "delete session", dispatch.Errorf(dispatch.CodeNotFound, "session not found"))
}

// DeleteSessions implements dispatch.Users.
func (db *DB) DeleteSessions(ctx context.Context, username string) (int, error) {
	var res sql.Result
	err := db.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE username = ?`, username)
		return err
	})
	db.sessionsChanged()
	if err != nil {
		return 0, fmt.Errorf("delete sessions of %s: %w", username, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// DeleteExpiredSessions implements dispatch.Users.
func (db *DB) DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error) {
	var res sql.Result
	err := db.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, micros(t))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
