package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// Failed sign-ins allowed before a username or a remote address is slowed
// down to one attempt per refill period: enough for a person mistyping,
// far too few for guessing.
const (
	userFailBurst   = 5
	userFailEvery   = 30 * time.Second
	remoteFailBurst = 20
	remoteFailEvery = 10 * time.Second
	maxLimiters     = 10000 // keys tracked; full (idle) limiters are evicted first
	loginWarnEvery  = time.Minute
)

// errBadLogin is the one answer to a wrong username, a wrong password and
// a disabled account alike.
var errBadLogin = Errorf(CodeUnauthorized, "wrong username or password")

// Login checks a username and password and opens a session. remote is the
// client's address, for the audit log and the rate limit on failures. The
// token is returned once; only its SHA-256 is stored.
func (a *Access) Login(ctx context.Context, username, password, remote string) (token string, s Session, err error) {
	now := a.now()
	done, ok := a.admit(username, remote, now)
	if !ok {
		return "", Session{}, Errorf(CodeUnauthorized, "too many failed sign-ins: wait a minute and try again")
	}
	u, err := a.users.User(ctx, username)
	if err != nil && !errors.Is(err, ErrNotFound) {
		done(true) // not the caller's failure
		return "", Session{}, fmt.Errorf("login: %w", err)
	}
	hash := a.dummy
	if u != nil {
		hash = []byte(u.PasswordHash)
	}
	// Compare even for an unknown user, so that timing tells nothing.
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	reason := ""
	switch {
	case u == nil:
		reason = "unknown user"
	case !match || len(password) > MaxPassword:
		reason = "wrong password"
	case u.Disabled:
		reason = "disabled"
	}
	done(reason == "")
	if reason != "" {
		a.Audit(ctx, auditName(username), AuditLoginFailed, auditName(username), map[string]string{"remote": remote, "reason": reason})
		return "", Session{}, errBadLogin
	}
	token = randomSecret(tokenBytes)
	s = Session{TokenHash: TokenHash(token), Username: u.Username, CreatedAt: now.UTC(), ExpiresAt: now.Add(a.ttl).UTC()}
	if err := a.users.CreateSession(ctx, s); err != nil {
		return "", Session{}, fmt.Errorf("login: %w", err)
	}
	a.Audit(ctx, u.Username, AuditLogin, u.Username, map[string]string{"remote": remote})
	return token, s, nil
}

// admit takes one failed attempt of username and of remote before the
// password is checked (so that parallel guesses are counted too); ok is
// false when either has none left. done(true) gives the attempt back.
func (a *Access) admit(username, remote string, now time.Time) (done func(success bool), ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ru, rr := a.byUser.reserve(username, now), a.byAddr.reserve(remote, now)
	u, r := ru.DelayFrom(now) > 0, rr.DelayFrom(now) > 0
	if u || r {
		ru.CancelAt(now)
		rr.CancelAt(now)
		if a.byUser.warn(username, now) || a.byAddr.warn(remote, now) {
			a.log.Warn("sign-in refused: too many failed attempts", "user", auditName(username), "remote", remote, "by_user", u, "by_remote", r)
		}
		return nil, false
	}
	return func(success bool) {
		if success {
			ru.CancelAt(now)
			rr.CancelAt(now)
		}
	}, true
}

// limiters are token buckets of failed attempts per key. The caller holds Access.mu.
type limiters struct {
	m     map[string]*limiter
	every time.Duration
	burst int
}

type limiter struct {
	lim    *rate.Limiter
	warned time.Time
}

// reserve takes one attempt of key; its delay is positive when key has none left.
func (l *limiters) reserve(key string, now time.Time) *rate.Reservation {
	e, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxLimiters {
			l.evict(now)
		}
		e = &limiter{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.m[key] = e
	}
	return e.lim.ReserveN(now, 1)
}

// warn reports whether a refusal for key should be logged (once a minute).
func (l *limiters) warn(key string, now time.Time) bool {
	e, ok := l.m[key]
	if !ok || now.Sub(e.warned) < loginWarnEvery {
		return false
	}
	e.warned = now
	return true
}

// evict drops the limiters that have refilled (they hold no information);
// when none has, one at random.
func (l *limiters) evict(now time.Time) {
	for k, e := range l.m {
		if e.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	if len(l.m) < maxLimiters {
		return
	}
	for k := range l.m {
		delete(l.m, k)
		return
	}
}
