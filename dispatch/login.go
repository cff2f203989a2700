package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// How sign-in failures are throttled (see throttle). A person mistyping
// never notices; guessing is refused per username and address, and slowed
// per username and per address, but a right password is never refused.
const (
	// pairFailures failed sign-ins as one username from one address are
	// allowed, then one more every pairDrain: after that the address is
	// refused for that username without the password being checked.
	pairFailures = 5
	pairDrain    = time.Minute
	// userFreeFailures recent failures of a username (from anywhere) are
	// free; past them every sign-in as that username waits, longer with
	// each failure, up to MaxSignInDelay. One failure drains every userDrain.
	userFreeFailures = 5
	userDrain        = 30 * time.Second
	// remoteFreeFailures recent failures from one address (any username)
	// are free: a control room behind one NAT makes honest mistakes by
	// the dozen. Past them its sign-ins wait too. One drains every remoteDrain.
	remoteFreeFailures = 100
	remoteDrain        = 6 * time.Second
	// firstDelay is the wait at the first failure past the free ones; it
	// doubles with each further failure, up to MaxSignInDelay.
	firstDelay = 250 * time.Millisecond
	// overFree caps how far past the free failures a count goes, so that
	// the slowdown ends within minutes of an attack ending.
	overFree = 16
	// goodFor is how long a sign-in makes its username and address
	// known: a known pair is not slowed by others' failures.
	goodFor        = 30 * 24 * time.Hour
	maxTracked     = 10000 // keys per table; drained ones are evicted first
	loginWarnEvery = time.Minute
)

// MaxSignInDelay is the longest a sign-in is slowed by failures of others.
const MaxSignInDelay = 3 * time.Second

// errBadLogin is the one answer to a wrong username, a wrong password and
// a disabled account alike.
var errBadLogin = Errorf(CodeUnauthorized, "wrong username or password")

// Login checks a username and password and opens a session. remote is the
// client's address, for the audit log and the throttle on failures. The
// token is returned once; only its SHA-256 is stored. A sign-in may wait
// up to MaxSignInDelay when its username or its address has failed often
// lately; it is refused unchecked only when this username has failed too
// often from this very address.
func (a *Access) Login(ctx context.Context, username, password, remote string) (token string, s Session, err error) {
	t, err := a.throttle.admit(username, remote, a.now())
	if err != nil {
		return "", Session{}, err
	}
	if t.delay > 0 {
		if err := a.sleep(ctx, t.delay); err != nil {
			t.done(notAGuess)
			return "", Session{}, fmt.Errorf("login: %w", err)
		}
	}
	u, err := a.users.User(ctx, username)
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.done(notAGuess) // not the caller's failure
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
	if reason != "" {
		t.done(failed)
		a.Audit(ctx, auditName(username), AuditLoginFailed, auditName(username), map[string]string{"remote": remote, "reason": reason})
		return "", Session{}, errBadLogin
	}
	now := a.now()
	token = randomSecret(tokenBytes)
	s = Session{TokenHash: TokenHash(token), Username: u.Username, CreatedAt: now.UTC(), ExpiresAt: now.Add(a.ttl).UTC()}
	if err := a.users.CreateSession(ctx, s); err != nil {
		t.done(notAGuess)
		return "", Session{}, fmt.Errorf("login: %w", err)
	}
	t.done(signedIn)
	a.Audit(ctx, u.Username, AuditLogin, u.Username, map[string]string{"remote": remote})
	return token, s, nil
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// throttle slows password guessing without ever locking the real user out
// (OWASP Authentication and Credential Stuffing cheat sheets, NIST SP
// 800-63B 5.2.2). Failures are counted in three tables, each count
// draining with time:
//
//   - per username and address: the guesser's own bucket. Past
//     pairFailures it is refused without running bcrypt. Nobody else
//     shares it, so nobody else is refused by it.
//   - per username, from anywhere: past a few, every sign-in as that
//     username waits (a delay doubling with each failure, at most
//     MaxSignInDelay). A slowdown, never a refusal, so that guesses from
//     rotating addresses cannot keep the real user out.
//   - per address, for any username: past a high count, sign-ins from it
//     wait too. Never a refusal, so that a control room behind one NAT is
//     not shut out by one user's mistakes or a guesser beside it.
//
// A username and address that signed in lately are known and skip both
// waits: a dispatcher at the usual desk is not slowed by a guesser
// elsewhere. Every attempt is counted when admitted, before bcrypt, so
// parallel guesses count too; a sign-in that succeeds gives its counts
// back. The waits are served by the caller outside the lock.
type throttle struct {
	log     *slog.Logger
	metrics *prometheus.CounterVec

	mu      sync.Mutex
	pairs   counters
	users   counters
	remotes counters
	known   map[string]time.Time // pair key -> last sign-in
}

// Attempt outcomes.
type outcome int

const (
	signedIn  outcome = iota // the counts are given back; the pair is known
	failed                   // a guess: the counts stay
	notAGuess                // the password was not checked: the counts are given back
)

// ticket is an admitted attempt: how long to wait before checking it, and
// done to report how it ended (exactly once).
type ticket struct {
	delay time.Duration
	done  func(outcome)
}

func newThrottle(log *slog.Logger, reg prometheus.Registerer) *throttle {
	t := &throttle{
		log:     log,
		pairs:   counters{m: map[string]*counter{}, drain: pairDrain, max: pairFailures},
		users:   counters{m: map[string]*counter{}, drain: userDrain, max: userFreeFailures + overFree},
		remotes: counters{m: map[string]*counter{}, drain: remoteDrain, max: remoteFreeFailures + overFree},
		known:   map[string]time.Time{},
		metrics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeline_signin_throttled_total",
			Help: "Sign-ins refused unchecked (action=refused, by=user_remote: too many failures as this user from this address) or made to wait (action=delayed, by=user or remote: recent failures of the username or the address).",
		}, []string{"action", "by"}),
	}
	for _, l := range [][2]string{{"refused", "user_remote"}, {"delayed", "user"}, {"delayed", "remote"}} {
		t.metrics.WithLabelValues(l[0], l[1])
	}
	if reg != nil {
		reg.MustRegister(t.metrics)
	}
	return t
}

// admit counts an attempt as username from remote at now. It refuses the
// attempt when the pair has failed too often; otherwise it says how long
// the attempt must wait.
func (t *throttle) admit(username, remote string, now time.Time) (ticket, error) {
	username = truncate(username, 64)
	pair := username + "\x00" + remote
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pairs.level(pair, now) > pairFailures-1 {
		t.metrics.WithLabelValues("refused", "user_remote").Inc()
		if t.pairs.warn(pair, now) {
			t.log.Warn("sign-in refused: too many failures as this user from this address", "user", auditName(username), "remote", remote)
		}
		return ticket{}, Errorf(CodeUnauthorized, "too many failed sign-ins as %s from this address: wait a minute and try again", auditName(username))
	}
	var delay time.Duration
	if last, ok := t.known[pair]; !ok || now.Sub(last) > goodFor {
		byUser := backoff(t.users.level(username, now) - userFreeFailures)
		byRemote := backoff(t.remotes.level(remote, now) - remoteFreeFailures)
		delay = max(byUser, byRemote)
		switch {
		case byUser > 0 && byUser >= byRemote:
			t.metrics.WithLabelValues("delayed", "user").Inc()
		case byRemote > 0:
			t.metrics.WithLabelValues("delayed", "remote").Inc()
		}
		if delay > 0 && (t.users.warn(username, now) || t.remotes.warn(remote, now)) {
			t.log.Warn("sign-in slowed: many recent failures", "user", auditName(username), "remote", remote, "delay", delay)
		}
	}
	t.pairs.add(pair, now, 1)
	t.users.add(username, now, 1)
	t.remotes.add(remote, now, 1)
	var once sync.Once
	return ticket{delay: delay, done: func(o outcome) {
		once.Do(func() { t.done(username, remote, pair, now, o) })
	}}, nil
}

func (t *throttle) done(username, remote, pair string, admitted time.Time, o outcome) {
	if o == failed {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pairs.add(pair, admitted, -1)
	t.users.add(username, admitted, -1)
	t.remotes.add(remote, admitted, -1)
	if o == signedIn {
		if len(t.known) >= maxTracked {
			evictKnown(t.known, admitted)
		}
		t.known[pair] = admitted
	}
}

// backoff is the wait for a count of failures past the free ones: none
// for zero or less, then firstDelay doubling, at most MaxSignInDelay.
func backoff(over float64) time.Duration {
	if over < 1 {
		return 0
	}
	d := time.Duration(float64(firstDelay) * math.Pow(2, math.Floor(over)-1))
	return min(d, MaxSignInDelay)
}

// counters count recent failures per key; each count drains by one every
// drain and never exceeds max. The caller holds throttle.mu.
type counters struct {
	m     map[string]*counter
	drain time.Duration
	max   float64
}

type counter struct {
	n      float64 // at time at
	at     time.Time
	warned time.Time
}

// level is key's count at now.
func (c *counters) level(key string, now time.Time) float64 {
	e, ok := c.m[key]
	if !ok {
		return 0
	}
	return e.level(now, c.drain)
}

func (e *counter) level(now time.Time, drain time.Duration) float64 {
	return max(0, e.n-float64(now.Sub(e.at))/float64(drain))
}

// add adds d to key's count at now (an attempt given back is taken off
// at the time it was admitted, so it costs nothing).
func (c *counters) add(key string, now time.Time, d float64) {
	e, ok := c.m[key]
	if !ok {
		if d <= 0 {
			return
		}
		if len(c.m) >= maxTracked {
			c.evict(now)
		}
		e = &counter{at: now}
		c.m[key] = e
	}
	if now.Before(e.at) { // given back after a later attempt: take it off as of now
		now = e.at
	}
	e.n, e.at = min(c.max, max(0, e.level(now, c.drain)+d)), now
}

// warn reports whether a throttled attempt of key should be logged (once a minute).
func (c *counters) warn(key string, now time.Time) bool {
	e, ok := c.m[key]
	if !ok || now.Sub(e.warned) < loginWarnEvery {
		return false
	}
	e.warned = now
	return true
}

// evict drops the counts that have drained (they hold no information);
// when none has, one at random.
func (c *counters) evict(now time.Time) {
	for k, e := range c.m {
		if e.level(now, c.drain) == 0 {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < maxTracked {
			return
		}
		delete(c.m, k)
	}
}

// evictKnown drops the pairs not seen within goodFor; when none is that
// old, one at random.
func evictKnown(known map[string]time.Time, now time.Time) {
	for k, at := range known {
		if now.Sub(at) > goodFor {
			delete(known, k)
		}
	}
	for k := range known {
		if len(known) < maxTracked {
			return
		}
		delete(known, k)
	}
}
