package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
)

// throttled is an Access whose sign-in waits are recorded, not slept.
type throttled struct {
	*accessFixture
	reg *prometheus.Registry

	mu     sync.Mutex
	delays []time.Duration
}

func newThrottled(tb testing.TB) *throttled {
	tb.Helper()
	f := &throttled{accessFixture: &accessFixture{users: memory.NewUsers(), audit: memory.NewAudit(), clock: dispatchtest.NewClock(clock0), area: testArea(tb, 2)}, reg: prometheus.NewRegistry()}
	acc, err := dispatch.NewAccess(dispatch.AccessConfig{
		Users: f.users, Auditor: f.audit, Area: f.area, Cost: bcrypt.MinCost, Now: f.clock.Now, Logger: quiet, Registry: f.reg,
	})
	if err != nil {
		tb.Fatal(err)
	}
	f.acc = acc
	dispatch.SetSleep(acc, func(_ context.Context, d time.Duration) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.delays = append(f.delays, d)
		return nil
	})
	admin := f.boot(tb)
	for _, name := range []string{"li", "wang"} {
		if _, err := acc.CreateUser(context.Background(), admin, name, "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
			tb.Fatal(err)
		}
	}
	f.waits()
	return f
}

// waits returns the waits recorded since it was last called.
func (f *throttled) waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.delays
	f.delays = nil
	return d
}

// login signs in and returns the error and how long the sign-in waited.
func (f *throttled) login(user, pw, remote string) (time.Duration, error) {
	f.waits()
	_, _, err := f.acc.Login(context.Background(), user, pw, remote)
	var wait time.Duration
	for _, d := range f.waits() {
		wait += d
	}
	return wait, err
}

// signIn signs in and returns the token.
func (f *throttled) signIn(tb testing.TB, user, pw, remote string) string {
	tb.Helper()
	tok, _, err := f.acc.Login(context.Background(), user, pw, remote)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// checked is how many passwords were checked (failed sign-ins are audited).
func (f *throttled) checked(tb testing.TB) int {
	tb.Helper()
	log, err := f.audit.AuditLog(context.Background(), 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, e := range log {
		if e.Action == dispatch.AuditLoginFailed || e.Action == dispatch.AuditLogin {
			n++
		}
	}
	return n
}

func (f *throttled) metric(action, by string) float64 {
	m, _ := f.reg.Gather()
	for _, mf := range m {
		if mf.GetName() != "lifeline_signin_throttled_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["action"] == action && l["by"] == by {
				return s.GetCounter().GetValue()
			}
		}
	}
	return -1
}

const userPw = "dispatch-1234567"

// TestLoginRotatingGuesses: guesses at admin, one every 2 s, each from a
// new address, never lock admin out: they are slowed, and admin's right
// password from a fresh address signs in after at most MaxSignInDelay.
func TestLoginRotatingGuesses(t *testing.T) {
	f := newThrottled(t)
	var waited []time.Duration
	for i := range 50 {
		f.clock.Add(2 * time.Second)
		d, err := f.login("admin", "guess-number-"+fmt.Sprint(i), fmt.Sprintf("198.51.100.%d", i))
		if dispatch.ErrorCode(err) != dispatch.CodeUnauthorized || strings.Contains(err.Error(), "too many") {
			t.Fatalf("guess %d: %v, want a plain wrong password (checked, not refused)", i, err)
		}
		waited = append(waited, d)
	}
	if waited[0] != 0 || waited[49] != dispatch.MaxSignInDelay {
		t.Fatalf("guesses waited %v: want the first free and the last %s", waited, dispatch.MaxSignInDelay)
	}
	f.clock.Add(2 * time.Second)
	d, err := f.login("admin", adminPassword, "203.0.113.9")
	if err != nil {
		t.Fatalf("admin's right password from a fresh address: %v", err)
	}
	if d <= 0 || d > dispatch.MaxSignInDelay {
		t.Fatalf("admin waited %s, want a delay of at most %s", d, dispatch.MaxSignInDelay)
	}
	// Admin's usual desk (where it signed in at boot) is not slowed at all.
	if d, err := f.login("admin", adminPassword, "127.0.0.1"); err != nil || d != 0 {
		t.Fatalf("admin from its known address: waited %s, %v; want at once", d, err)
	}
	if got := f.metric("delayed", "user"); got < 40 {
		t.Errorf("lifeline_signin_throttled_total{delayed,user} = %v, want the slowed guesses counted", got)
	}
}

// TestLoginGuesserRefused: one address guessing one username is refused
// without its password being checked, quickly (no wait); the same user
// from elsewhere, and another user from that address, are not.
func TestLoginGuesserRefused(t *testing.T) {
	f := newThrottled(t)
	const guesser = "192.0.2.66"
	for i := range 5 {
		if _, err := f.login("li", "wrong-password-x", guesser); err == nil || strings.Contains(err.Error(), "too many") {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	before := f.checked(t)
	for _, pw := range []string{"wrong-password-y", userPw} {
		d, err := f.login("li", pw, guesser)
		if dispatch.ErrorCode(err) != dispatch.CodeUnauthorized || !strings.Contains(err.Error(), "too many failed sign-ins as li from this address") || d != 0 {
			t.Fatalf("sixth attempt (%s): waited %s, %v; want refused at once: too many", pw, d, err)
		}
	}
	if f.checked(t) != before {
		t.Fatal("a refused attempt's password was checked")
	}
	if _, err := f.login("li", userPw, "192.0.2.1"); err != nil {
		t.Fatalf("li from another address: %v", err)
	}
	if d, err := f.login("wang", userPw, guesser); err != nil || d != 0 {
		t.Fatalf("wang from the guesser's address: waited %s, %v; want at once", d, err)
	}
	if got := f.metric("refused", "user_remote"); got != 2 {
		t.Errorf("lifeline_signin_throttled_total{refused,user_remote} = %v, want 2", got)
	}
	f.clock.Add(time.Minute) // one more try a minute
	if _, err := f.login("li", userPw, guesser); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

// TestLoginSharedAddress: a control room behind one NAT is one address.
// One user's failures there never stop another; a guesser spraying many
// usernames from it slows it down but refuses nobody, and a user who
// signed in from it before is not even slowed.
func TestLoginSharedAddress(t *testing.T) {
	f := newThrottled(t)
	const nat = "10.20.0.1"
	if _, err := f.login("wang", userPw, nat); err != nil { // wang's usual desk
		t.Fatal(err)
	}
	for range 30 {
		_, _ = f.login("li", "wrong-password-x", nat)
	}
	if d, err := f.login("admin", adminPassword, nat); err != nil || d != 0 {
		t.Fatalf("after 30 failures of li: admin from the same address waited %s, %v; want at once", d, err)
	}
	for i := range 150 { // spraying: 3 guesses at each of 50 usernames
		f.clock.Add(100 * time.Millisecond)
		_, _ = f.login(fmt.Sprintf("user%02d", i/3), "Spring2026!!", nat)
	}
	d, err := f.login("li", userPw, "10.20.0.2")
	if err != nil || d != 0 {
		t.Fatalf("li from elsewhere: waited %s, %v", d, err)
	}
	admin, _ := f.acc.Authenticate(context.Background(), f.signIn(t, "admin", adminPassword, "127.0.0.1"))
	if _, err := f.acc.CreateUser(context.Background(), admin, "zhao", userPw, dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	d, err = f.login("zhao", userPw, nat) // a dispatcher new to this desk
	if err != nil || d <= 0 || d > dispatch.MaxSignInDelay {
		t.Fatalf("zhao from the sprayed address: waited %s, %v; want signed in after a delay of at most %s", d, err, dispatch.MaxSignInDelay)
	}
	if d, err := f.login("wang", userPw, nat); err != nil || d != 0 {
		t.Fatalf("wang from its known desk: waited %s, %v; want at once", d, err)
	}
	if f.metric("delayed", "remote") < 1 {
		t.Error("slowed sign-ins from the sprayed address are not counted")
	}
}

// TestLoginParallelGuesses: guesses sent at once are counted as they are
// admitted, before any password is checked.
func TestLoginParallelGuesses(t *testing.T) {
	f := newThrottled(t)
	before := f.checked(t)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { _, _, _ = f.acc.Login(context.Background(), "li", fmt.Sprint("guess-number-", i), "192.0.2.7") })
	}
	wg.Wait()
	if n := f.checked(t) - before; n != 5 {
		t.Fatalf("%d of 50 parallel guesses from one address were checked, want 5", n)
	}
	f.waits()
	for i := range 50 {
		wg.Go(func() {
			_, _, _ = f.acc.Login(context.Background(), "wang", fmt.Sprint("guess-number-", i), fmt.Sprint("198.51.100.", i))
		})
	}
	wg.Wait()
	longest := time.Duration(0)
	for _, d := range f.waits() {
		longest = max(longest, d)
	}
	if longest != dispatch.MaxSignInDelay {
		t.Fatalf("50 parallel guesses from 50 addresses: the longest wait %s, want %s", longest, dispatch.MaxSignInDelay)
	}
	if _, err := f.login("wang", userPw, "203.0.113.1"); err != nil {
		t.Fatalf("wang after the parallel guesses: %v", err)
	}
}

// TestLoginWaitEnds: a client that leaves while its sign-in waits is not
// charged a failure.
func TestLoginWaitEnds(t *testing.T) {
	f := newThrottled(t)
	for i := range 8 {
		_, _ = f.login("li", "wrong-password-x", fmt.Sprint("198.51.100.", i))
	}
	dispatch.SetSleep(f.acc, func(ctx context.Context, d time.Duration) error { return context.Canceled })
	for range 20 {
		if _, _, err := f.acc.Login(context.Background(), "li", "wrong-password-x", "192.0.2.9"); err == nil || strings.Contains(err.Error(), "too many") {
			t.Fatalf("a sign-in whose client left: %v", err)
		}
	}
	dispatch.SetSleep(f.acc, func(context.Context, time.Duration) error { return nil })
	if _, err := f.login("li", userPw, "192.0.2.9"); err != nil {
		t.Fatalf("attempts abandoned while waiting were counted as failures: %v", err)
	}
}
