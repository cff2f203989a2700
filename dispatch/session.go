package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Sessions last a shift; a token is 32 random bytes.
const (
	defaultTTL = 12 * time.Hour
	tokenBytes = 32
)

// Authenticate returns who holds token: the session must exist, be
// unexpired and belong to a user who is not disabled.
func (a *Access) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 256 {
		return Principal{}, Errorf(CodeUnauthorized, "invalid session token")
	}
	h := TokenHash(token)
	s, err := a.users.Session(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, Errorf(CodeUnauthorized, "invalid or ended session: sign in again")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if !a.now().Before(s.ExpiresAt) {
		if err := a.users.DeleteSession(ctx, h); err != nil && !errors.Is(err, ErrNotFound) {
			a.log.Warn("delete expired session", "user", s.Username, "err", err)
		}
		return Principal{}, Errorf(CodeUnauthorized, "session expired: sign in again")
	}
	u, err := a.users.User(ctx, s.Username)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Disabled) {
		return Principal{}, Errorf(CodeUnauthorized, "account disabled or removed")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return Principal{Name: u.Username, Role: u.Role, Jurisdiction: u.Jurisdiction}, nil
}

// Logout ends the session of token, and the live feeds that hold it.
// Ending an unknown session is not an error.
func (a *Access) Logout(ctx context.Context, token string) error {
	h := TokenHash(token)
	s, err := a.users.Session(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if err := a.users.DeleteSession(ctx, h); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("logout: %w", err)
	}
	a.ended(SessionsEnded{Username: s.Username, TokenHash: h})
	a.Audit(ctx, s.Username, AuditLogout, s.Username, nil)
	return nil
}

// endSessions ends every session of username, and the live feeds that
// hold one, and says how many there were. Changing what a user may do
// (a password reset, disabling, a new role) ends them, so that nobody
// keeps a sign-in made before the change (OWASP: renew sessions when
// privileges change). A running server's feeds close at once through
// Events; with no Events (lifelined admin run beside the server) they
// close when they next check their session.
func (a *Access) endSessions(ctx context.Context, username string) (int, error) {
	n, err := a.users.DeleteSessions(ctx, username)
	if err != nil {
		return 0, fmt.Errorf("end the sessions of %s: %w", username, err)
	}
	a.ended(SessionsEnded{Username: username})
	return n, nil
}

func (a *Access) ended(s SessionsEnded) {
	if a.events != nil {
		a.events.Publish(Event{Type: EventSessions, Sessions: &s})
	}
}

// SweepSessions deletes the sessions that have expired; the server runs it
// daily. It returns how many went.
func (a *Access) SweepSessions(ctx context.Context) (int, error) {
	return a.users.DeleteExpiredSessions(ctx, a.now())
}

// TokenHash is what is stored of a session token: its SHA-256, in hex.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
