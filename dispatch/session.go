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
// unexpired and belong to a user who is not disabled. A session found
// valid a moment ago is answered from memory (AccessConfig.SessionCache);
// what ends sessions forgets them at once.
func (a *Access) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 256 {
		return Principal{}, Errorf(CodeUnauthorized, "invalid session token")
	}
	h := TokenHash(token)
	if p, ok := a.cache.get(h, a.now()); ok {
		return p, nil
	}
	return a.authenticate(ctx, h)
}

// Recheck is Authenticate from the record, never from memory: a live
// feed rechecks its session with it, to learn of what ended sessions
// beside this server (lifelined admin reset-password). The answer is
// remembered, or forgotten, for the API calls that follow.
func (a *Access) Recheck(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 256 {
		return Principal{}, Errorf(CodeUnauthorized, "invalid session token")
	}
	return a.authenticate(ctx, TokenHash(token))
}

// authenticate reads session h and its user from the record.
func (a *Access) authenticate(ctx context.Context, h string) (Principal, error) {
	st := a.cache.begin()
	s, err := a.users.Session(ctx, h)
	if errors.Is(err, ErrNotFound) {
		a.cache.drop(h)
		return Principal{}, Errorf(CodeUnauthorized, "invalid or ended session: sign in again")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	now := a.now()
	if !now.Before(s.ExpiresAt) {
		a.cache.drop(h)
		if err := a.users.DeleteSession(ctx, h); err != nil && !errors.Is(err, ErrNotFound) {
			a.log.Warn("delete expired session", "user", s.Username, "err", err)
		}
		return Principal{}, Errorf(CodeUnauthorized, "session expired: sign in again")
	}
	u, err := a.users.User(ctx, s.Username)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Disabled) {
		a.cache.drop(h)
		return Principal{}, Errorf(CodeUnauthorized, "account disabled or removed")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	p := Principal{Name: u.Username, Role: u.Role, Jurisdiction: u.Jurisdiction}
	a.cache.put(h, p, s.ExpiresAt, now, st)
	return p, nil
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

// ended forgets the sessions s names, here at once and, through the
// events, on the servers that share them (Watch), and closes their feeds.
func (a *Access) ended(s SessionsEnded) {
	a.cache.forget(s)
	if a.events != nil {
		a.events.Publish(Event{Type: EventSessions, Sessions: &s})
	}
}

// watchBuffer is how many events Watch may fall behind before the bus
// drops it; it then forgets every remembered session and follows again.
const watchBuffer = 4096

// Watch follows events until ctx is done and forgets the sessions that
// end on any server publishing to them: a bus shared between servers
// makes a sign-out on one effective on all at once, not after the
// session cache's TTL. Every server runs it.
func (a *Access) Watch(ctx context.Context, events Subscriber) error {
	for {
		sub := events.Subscribe(watchBuffer)
		// What ended before this subscription is unknown: start afresh.
		a.cache.clear()
		behind := a.follow(ctx, sub)
		sub.Close()
		if !behind {
			return nil
		}
		a.log.Warn("fell behind the session events: every remembered session is read again")
	}
}

// follow forgets the sessions ended on sub until ctx is done (false) or
// the bus dropped sub for falling behind (true).
func (a *Access) follow(ctx context.Context, sub *Subscription) (behind bool) {
	for {
		select {
		case <-ctx.Done():
			return false
		case e, ok := <-sub.C:
			if !ok {
				return true
			}
			if e.Type == EventSessions && e.Sessions != nil {
				a.cache.forget(*e.Sessions)
			}
		}
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
