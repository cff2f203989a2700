package dispatch_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
)

// countingUsers counts the session and user reads that reach the record,
// and can hold one session read back until told to go on.
type countingUsers struct {
	dispatch.Users
	reads atomic.Int64

	mu   sync.Mutex
	hold chan struct{} // the next Session read waits for it to close
	held chan struct{} // closed once that read is waiting
}

func (u *countingUsers) Session(ctx context.Context, h string) (*dispatch.Session, error) {
	u.reads.Add(1)
	s, err := u.Users.Session(ctx, h)
	u.mu.Lock()
	hold, held := u.hold, u.held
	u.hold, u.held = nil, nil
	u.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
	return s, err
}

func (u *countingUsers) User(ctx context.Context, name string) (*dispatch.User, error) {
	u.reads.Add(1)
	return u.Users.User(ctx, name)
}

// holdNext makes the next Session read wait, after it has read, until
// release is called; waiting returns once it is waiting.
func (u *countingUsers) holdNext() (waiting func(), release func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.hold, u.held = make(chan struct{}), make(chan struct{})
	hold, held := u.hold, u.held
	return func() { <-held }, func() { close(hold) }
}

type cacheFixture struct {
	acc   *dispatch.Access
	users *countingUsers
	clock *dispatchtest.Clock
	bus   *dispatch.Bus
	admin dispatch.Principal
	pw    map[string]string // users' passwords, by name
}

func newCacheFixture(tb testing.TB, mutate func(*dispatch.AccessConfig)) *cacheFixture {
	tb.Helper()
	f := &cacheFixture{users: &countingUsers{Users: memory.NewUsers()}, clock: dispatchtest.NewClock(clock0), bus: dispatch.NewBus(), pw: map[string]string{}}
	f.admin = dispatch.Principal{Name: "admin", Role: dispatch.RoleAdmin}
	f.acc = newCachedAccess(tb, f.users, f.bus, f.clock, mutate)
	if _, err := f.acc.Bootstrap(context.Background(), adminPassword); err != nil {
		tb.Fatal(err)
	}
	return f
}

func newCachedAccess(tb testing.TB, users dispatch.Users, bus *dispatch.Bus, clock *dispatchtest.Clock, mutate func(*dispatch.AccessConfig)) *dispatch.Access {
	tb.Helper()
	cfg := dispatch.AccessConfig{Users: users, Auditor: memory.NewAudit(), Area: testArea(tb, 1), Events: bus, Cost: bcrypt.MinCost, Now: clock.Now, Logger: quiet}
	if mutate != nil {
		mutate(&cfg)
	}
	acc, err := dispatch.NewAccess(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return acc
}

func (f *cacheFixture) login(tb testing.TB, name string) string {
	tb.Helper()
	pw, ok := f.pw[name]
	if !ok {
		pw = "dispatch-1234567"
	}
	tok, _, err := f.acc.Login(context.Background(), name, pw, "10.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// cached signs tok in once from the record, then checks that signing in
// again reads nothing.
func (f *cacheFixture) cached(tb testing.TB, tok string) dispatch.Principal {
	tb.Helper()
	ctx := context.Background()
	if _, err := f.acc.Authenticate(ctx, tok); err != nil {
		tb.Fatal(err)
	}
	before := f.users.reads.Load()
	p, err := f.acc.Authenticate(ctx, tok)
	if err != nil {
		tb.Fatal(err)
	}
	if n := f.users.reads.Load() - before; n != 0 {
		tb.Fatalf("a remembered session cost %d reads of the record, want 0", n)
	}
	return p
}

// TestSessionCache: a session found valid is answered from memory for a
// few seconds (no read of the record), and never past the session's own
// expiry.
func TestSessionCache(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, func(c *dispatch.AccessConfig) { c.SessionTTL = 3 * time.Second })
	if _, err := f.acc.CreateUser(ctx, f.admin, "li", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	tok := f.login(t, "li")
	before := f.users.reads.Load()
	p := f.cached(t, tok)
	if want := (dispatch.Principal{Name: "li", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}); p != want {
		t.Fatalf("principal %+v, want %+v", p, want)
	}
	if n := f.users.reads.Load() - before; n != 2 {
		t.Fatalf("the first sign-in read the record %d times, want 2 (session, user)", n)
	}
	f.clock.Add(2 * time.Second)
	if _, err := f.acc.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second) // the session's 3 s are up, the cache's 5 s are not
	if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
		t.Fatalf("at the session's expiry: %v, want unauthorized", err)
	}

	t.Run("read again after the TTL", func(t *testing.T) {
		g := newCacheFixture(t, nil)
		if _, err := g.acc.CreateUser(ctx, g.admin, "li", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
			t.Fatal(err)
		}
		tok := g.login(t, "li")
		g.cached(t, tok)
		g.clock.Add(5 * time.Second)
		before := g.users.reads.Load()
		if _, err := g.acc.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if g.users.reads.Load() == before {
			t.Fatal("no read of the record after the cache's TTL")
		}
	})
	t.Run("off", func(t *testing.T) {
		g := newCacheFixture(t, func(c *dispatch.AccessConfig) { c.SessionCache = -1 })
		if _, err := g.acc.CreateUser(ctx, g.admin, "li", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
			t.Fatal(err)
		}
		tok := g.login(t, "li")
		for range 2 {
			before := g.users.reads.Load()
			if _, err := g.acc.Authenticate(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if g.users.reads.Load() == before {
				t.Fatal("SessionCache < 0 and yet a session was answered from memory")
			}
		}
	})
}

// TestSessionCacheEnds: whatever ends a remembered session (a sign-out,
// a password reset, disabling, a role change) is effective on the very
// next call; other sessions stay remembered.
func TestSessionCacheEnds(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, nil)
	for _, name := range []string{"li", "wang"} {
		if _, err := f.acc.CreateUser(ctx, f.admin, name, "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		end  func(tok string) error
		keep bool // li's other session survives
	}{
		{"sign out", func(tok string) error { return f.acc.Logout(ctx, tok) }, true},
		{"reset password", func(string) (err error) {
			f.pw["li"], err = f.acc.ResetPassword(ctx, f.admin, "li")
			return err
		}, false},
		{"disable", func(string) error {
			if _, err := f.acc.SetDisabled(ctx, f.admin, "li", true); err != nil {
				return err
			}
			_, err := f.acc.SetDisabled(ctx, f.admin, "li", false)
			return err
		}, false},
		{"change role", func(string) error {
			_, err := f.acc.SetRole(ctx, f.admin, "li", dispatch.RoleIntegrator, countyID)
			return err
		}, false},
	}
	other := f.login(t, "wang")
	f.cached(t, other)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, two := f.login(t, "li"), f.login(t, "li")
			f.cached(t, one)
			f.cached(t, two)
			if err := tt.end(one); err != nil {
				t.Fatal(err)
			}
			if _, err := f.acc.Authenticate(ctx, one); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
				t.Fatalf("the ended session on the next call: %v, want unauthorized", err)
			}
			_, err := f.acc.Authenticate(ctx, two)
			if tt.keep && err != nil {
				t.Fatalf("li's other session: %v, want still valid", err)
			}
			if !tt.keep && dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
				t.Fatalf("li's other session: %v, want unauthorized", err)
			}
			f.cached(t, other)
		})
	}
}

// TestSessionRecheck: a session ended beside this server (lifelined
// admin deletes it in the record) is still remembered by Authenticate
// until the TTL, but Recheck reads the record, and what it finds ended is
// forgotten for the calls that follow.
func TestSessionRecheck(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, nil)
	if _, err := f.acc.CreateUser(ctx, f.admin, "li", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	tok := f.login(t, "li")
	f.cached(t, tok)
	before := f.users.reads.Load()
	if _, err := f.acc.Recheck(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if f.users.reads.Load() == before {
		t.Fatal("Recheck answered from memory")
	}
	if err := f.users.DeleteSession(ctx, dispatch.TokenHash(tok)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acc.Recheck(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
		t.Fatalf("Recheck of a deleted session: %v, want unauthorized", err)
	}
	if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
		t.Fatalf("Authenticate after Recheck found the session gone: %v, want unauthorized", err)
	}
}

// TestSessionCacheOtherServer: two servers on one record and one bus;
// a sign-out and a role change on one are effective on the other at
// once, through Watch, long before the other's cache would read the
// record again.
func TestSessionCacheOtherServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := newCacheFixture(t, nil)
	long := func(c *dispatch.AccessConfig) { c.SessionCache = time.Hour }
	other := &cacheFixture{users: f.users, clock: f.clock, bus: f.bus, pw: f.pw, admin: f.admin}
	other.acc = newCachedAccess(t, f.users, f.bus, f.clock, long)
	done := make(chan error, 1)
	go func() { done <- other.acc.Watch(ctx, f.bus) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	if _, err := f.acc.CreateUser(ctx, f.admin, "li", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	ended := func(tok string) bool {
		_, err := other.acc.Authenticate(ctx, tok)
		return dispatch.ErrorCode(err) == dispatch.CodeUnauthorized
	}
	one, two := f.login(t, "li"), f.login(t, "li")
	other.cached(t, one)
	other.cached(t, two)
	if err := f.acc.Logout(ctx, one); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the sign-out on the other server", func() bool { return ended(one) })
	if ended(two) {
		t.Fatal("the other session of li ended too")
	}
	if _, err := f.acc.SetRole(ctx, f.admin, "li", dispatch.RoleIntegrator, countyID); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the role change on the other server", func() bool { return ended(two) })
}

// TestSessionCacheRace: a read of the record that began before a
// sign-out must not put the session back in memory after the sign-out
// forgot it.
func TestSessionCacheRace(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, nil)
	if _, err := f.acc.CreateUser(ctx, f.admin, "li", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	tok := f.login(t, "li")
	waiting, release := f.users.holdNext()
	done := make(chan error, 1)
	go func() { _, err := f.acc.Authenticate(ctx, tok); done <- err }()
	waiting() // it has read the session, still valid
	if err := f.acc.Logout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the call that began before the sign-out: %v", err)
	}
	if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
		t.Fatalf("after the sign-out: %v, want unauthorized (a read from before it came back)", err)
	}
}

// markedUsers is a record with a sessions mark, as the embedded store has.
type markedUsers struct {
	*countingUsers
	mark atomic.Uint64
}

func (u *markedUsers) SessionMark() uint64 { return u.mark.Load() }

// TestSessionCacheMark: on a record with a sessions mark, a session
// deleted beside the server (another process, no shared bus) is not
// answered from memory once the mark moved.
func TestSessionCacheMark(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, nil)
	users := &markedUsers{countingUsers: f.users}
	f.acc = newCachedAccess(t, users, f.bus, f.clock, func(c *dispatch.AccessConfig) { c.SessionCache = time.Hour })
	if _, err := f.acc.CreateUser(ctx, f.admin, "li", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	tok := f.login(t, "li")
	f.cached(t, tok)
	if err := f.users.Users.DeleteSession(ctx, dispatch.TokenHash(tok)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acc.Authenticate(ctx, tok); err != nil {
		t.Fatalf("before the mark moved: %v (the memory of it should still answer)", err)
	}
	users.mark.Add(1)
	if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
		t.Fatalf("after the mark moved: %v, want unauthorized", err)
	}
}
