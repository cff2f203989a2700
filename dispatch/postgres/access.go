package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const userColumns = `username, role, jurisdiction, password_hash, disabled, created_at, updated_at`

func scanUser(row pgx.Row) (*dispatch.User, error) {
	var u dispatch.User
	if err := row.Scan(&u.Username, &u.Role, &u.Jurisdiction, &u.PasswordHash, &u.Disabled, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	return &u, nil
}

// CreateUser implements dispatch.Users.
func (db *DB) CreateUser(ctx context.Context, u *dispatch.User) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.Username, u.Role, u.Jurisdiction, u.PasswordHash, u.Disabled, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Username, constraint(err, fmt.Sprintf("user %q exists", u.Username), ""))
	}
	return nil
}

// User implements dispatch.Users.
func (db *DB) User(ctx context.Context, username string) (*dispatch.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "user %q not found", username)
	}
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", username, err)
	}
	return u, nil
}

// UpdateUser implements dispatch.Users.
func (db *DB) UpdateUser(ctx context.Context, u *dispatch.User) error {
	tag, err := db.pool.Exec(ctx, `UPDATE users SET role = $2, jurisdiction = $3, password_hash = $4, disabled = $5,
		created_at = $6, updated_at = $7 WHERE username = $1`,
		u.Username, u.Role, u.Jurisdiction, u.PasswordHash, u.Disabled, u.CreatedAt, u.UpdatedAt)
	return affected(tag, err, "update user "+u.Username, dispatch.Errorf(dispatch.CodeNotFound, "user %q not found", u.Username))
}

// ListUsers implements dispatch.Users: by username.
func (db *DB) ListUsers(ctx context.Context) ([]*dispatch.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	out, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

// SetUnitCredential implements dispatch.Users.
func (db *DB) SetUnitCredential(ctx context.Context, c dispatch.UnitCredential) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO unit_credentials (unit, password_hash, rotated_at) VALUES ($1, $2, $3)
		ON CONFLICT (unit) DO UPDATE SET password_hash = excluded.password_hash, rotated_at = excluded.rotated_at`,
		c.Unit, c.PasswordHash, c.RotatedAt)
	if err != nil {
		return fmt.Errorf("credential of unit %s: %w", c.Unit, err)
	}
	return nil
}

// UnitCredential implements dispatch.Users.
func (db *DB) UnitCredential(ctx context.Context, unit string) (*dispatch.UnitCredential, error) {
	c := dispatch.UnitCredential{Unit: unit}
	err := db.pool.QueryRow(ctx, `SELECT password_hash, rotated_at FROM unit_credentials WHERE unit = $1`, unit).
		Scan(&c.PasswordHash, &c.RotatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "no credential for unit %q", unit)
	}
	if err != nil {
		return nil, fmt.Errorf("credential of unit %s: %w", unit, err)
	}
	c.RotatedAt = utc(c.RotatedAt)
	return &c, nil
}

// CreateSession implements dispatch.Users: the user must exist, and a
// token hash already in use is a conflict.
func (db *DB) CreateSession(ctx context.Context, s dispatch.Session) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO sessions (token_hash, username, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		s.TokenHash, s.Username, s.CreatedAt, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("session of %s: %w", s.Username, constraint(err, "session exists", fmt.Sprintf("user %q not found", s.Username)))
	}
	return nil
}

// Session implements dispatch.Users. Expiry is the caller's to check.
func (db *DB) Session(ctx context.Context, tokenHash string) (*dispatch.Session, error) {
	s := dispatch.Session{TokenHash: tokenHash}
	err := db.pool.QueryRow(ctx, `SELECT username, created_at, expires_at FROM sessions WHERE token_hash = $1`, tokenHash).
		Scan(&s.Username, &s.CreatedAt, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "session not found")
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = utc(s.CreatedAt), utc(s.ExpiresAt)
	return &s, nil
}

// DeleteSession implements dispatch.Users; deleting an unknown session is not found.
func (db *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return affected(tag, err, "delete session", dispatch.Errorf(dispatch.CodeNotFound, "session not found"))
}

// DeleteSessions implements dispatch.Users.
func (db *DB) DeleteSessions(ctx context.Context, username string) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE username = $1`, username)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of %s: %w", username, err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteExpiredSessions implements dispatch.Users.
func (db *DB) DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
