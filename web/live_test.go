package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/web"
)

// message is any message of /api/v1/live; a batch holds others.
type message struct {
	Type       string               `json:"type"`
	Units      []dispatch.UnitState `json:"units"`
	Incidents  []dispatch.Incident  `json:"incidents"`
	Unit       *dispatch.UnitState  `json:"unit"`
	Incident   *dispatch.Incident   `json:"incident"`
	Assignment *dispatch.Assignment `json:"assignment"`
	Consent    *dispatch.Consent    `json:"consent"`
	Events     []message            `json:"events"`
}

// unread holds, per feed, the messages of a batch not read yet.
var unread sync.Map // *websocket.Conn -> []message

func (e *env) dial(tb testing.TB, query string, a auth) (*websocket.Conn, *http.Response, error) {
	tb.Helper()
	req, _ := http.NewRequest("GET", e.url, nil)
	a(req)
	url := "ws" + strings.TrimPrefix(e.url, "http") + "/api/v1/live" + query
	c, res, err := websocket.DefaultDialer.Dial(url, req.Header)
	if err == nil {
		tb.Cleanup(func() { c.Close() })
	}
	return c, res, err
}

func (e *env) live(tb testing.TB, query string, a auth) *websocket.Conn {
	tb.Helper()
	c, res, err := e.dial(tb, query, a)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		tb.Fatalf("dial live%s: %v (status %d)", query, err, status)
	}
	return c
}

// read returns the next message of the feed but pings, one at a time
// from a batch.
func read(tb testing.TB, c *websocket.Conn) message {
	tb.Helper()
	for {
		if q, _ := unread.Load(c); q != nil && len(q.([]message)) > 0 {
			q := q.([]message)
			unread.Store(c, q[1:])
			return q[0]
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m message
		if err := c.ReadJSON(&m); err != nil {
			tb.Fatalf("read live: %v", err)
		}
		switch m.Type {
		case "ping":
		case "batch":
			if len(m.Events) == 0 {
				tb.Fatal("an empty batch")
			}
			unread.Store(c, m.Events)
		default:
			return m
		}
	}
}

// unreadLeft is how many messages of a batch c has not read yet.
func unreadLeft(c *websocket.Conn) int {
	q, _ := unread.Load(c)
	if q == nil {
		return 0
	}
	return len(q.([]message))
}

func unitIDs(us []dispatch.UnitState) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}

func TestLiveRefused(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		query  string
		as     auth
		status int
	}{
		{"no credentials", "", noAuth, 401},
		{"invalid token", "", bearer("nope"), 401},
		{"dispatcher widening to the city", "?jurisdiction=" + cityID, bearer(e.tokens["disp-a"]), 403},
		{"dispatcher reading another county", "?jurisdiction=" + countyB, bearer(e.tokens["disp-a"]), 403},
		{"unknown jurisdiction", "?jurisdiction=999999", bearer(e.tokens["city"]), 400},
		{"cookie from another site", "", cookie(e.tokens["disp-a"], "https://evil.example"), 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res, err := e.dial(t, tt.query, tt.as)
			if !errors.Is(err, websocket.ErrBadHandshake) || res == nil || res.StatusCode != tt.status {
				status := 0
				if res != nil {
					status = res.StatusCode
				}
				t.Fatalf("dial: %v, status %d; want refused with %d before the upgrade", err, status, tt.status)
			}
		})
	}
}

// TestLiveScope checks that a county console never receives another
// county's events and a city console receives both.
func TestLiveScope(t *testing.T) {
	e := newEnv(t)
	consoles := map[string]*websocket.Conn{
		"disp-a":     e.live(t, "", bearer(e.tokens["disp-a"])),
		"disp-b":     e.live(t, "", cookie(e.tokens["disp-b"], e.url)),
		"city":       e.live(t, "", bearer(e.tokens["city"])),
		"city as A":  e.live(t, "?jurisdiction="+countyA, bearer(e.tokens["city"])),
		"integrator": e.live(t, "", bearer(e.tokens["integ"])),
		"admin":      e.live(t, "", bearer(e.tokens["admin"])),
	}
	wantUnits := map[string][]string{
		"disp-a": {"U01", "U02"}, "disp-b": {"N01"}, "city": {"N01", "U01", "U02"}, "city as A": {"U01", "U02"},
		"integrator": {"U01", "U02"}, "admin": {"N01", "U01", "U02"},
	}
	for name, c := range consoles {
		snap := read(t, c)
		if snap.Type != "snapshot" || !slices.Equal(unitIDs(snap.Units), wantUnits[name]) {
			t.Fatalf("%s snapshot: %s with units %v, want %v", name, snap.Type, unitIDs(snap.Units), wantUnits[name])
		}
	}

	// County B's events first, then county A's; a last event in each
	// county marks the end of what a console can get.
	e.move(t, "N01", centreB)
	incB := e.incident(t, centreB)
	e.move(t, "U01", centreA)
	incA := e.incident(t, centreA)
	endB := e.incident(t, centreB)

	sees := map[string]struct{ a, b bool }{
		"disp-a": {true, false}, "disp-b": {false, true}, "city": {true, true}, "city as A": {true, false},
		"integrator": {true, false}, "admin": {true, true},
	}
	for name, want := range sees {
		t.Run(name, func(t *testing.T) {
			c := consoles[name]
			var got []string
			last := incA.ID
			if want.b {
				last = endB.ID
			}
			for {
				m := read(t, c)
				switch {
				case m.Unit != nil:
					got = append(got, "unit "+m.Unit.ID+" "+m.Unit.Jurisdiction)
				case m.Incident != nil:
					got = append(got, "incident "+m.Incident.ID+" "+m.Incident.Jurisdiction)
				}
				if m.Incident != nil && m.Incident.ID == last {
					break
				}
			}
			var want2 []string
			if want.b {
				want2 = append(want2, "unit N01 "+countyB, "incident "+incB.ID+" "+countyB)
			}
			if want.a {
				want2 = append(want2, "unit U01 "+countyA, "incident "+incA.ID+" "+countyA)
			}
			if want.b {
				want2 = append(want2, "incident "+endB.ID+" "+countyB)
			}
			if !slices.Equal(got, want2) {
				t.Fatalf("received\n%q\nwant\n%q", got, want2)
			}
		})
	}
	// The county A consoles must not have county B's last event waiting either.
	for _, name := range []string{"disp-a", "city as A", "integrator"} {
		c := consoles[name]
		if n := unreadLeft(c); n > 0 {
			t.Errorf("%s received %d more after its last event", name, n)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var m message
		if err := c.ReadJSON(&m); err == nil && m.Type != "ping" {
			t.Errorf("%s received %s after its last event", name, m.Type)
		}
	}
}

// TestLiveSessionEnds checks that a feed ends with its session even when
// another process ended it (lifelined admin reset-password deletes the
// sessions in the store): the feed finds out at its next recheck.
func TestLiveSessionEnds(t *testing.T) {
	e := newEnv(t, func(s *web.Server) { web.SetRecheck(s, 50*time.Millisecond) })
	tok := e.tokens["disp-a"]
	c := e.live(t, "", bearer(tok))
	if m := read(t, c); m.Type != "snapshot" {
		t.Fatalf("first message %s", m.Type)
	}
	if err := e.users.DeleteSession(context.Background(), dispatch.TokenHash(tok)); err != nil {
		t.Fatal(err)
	}
	wantClose(t, c, 4401, 5*time.Second)
}

// wantClose reads c until it closes, which must be with code within d.
func wantClose(tb testing.TB, c *websocket.Conn, code int, d time.Duration) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			tb.Fatalf("feed ended with %v, want close %d within %s", err, code, d)
		}
		return
	}
}

// stillOpen fails unless c is open: nothing but data or a timeout for a while.
func stillOpen(tb testing.TB, c *websocket.Conn) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		var m message
		err := c.ReadJSON(&m)
		if err == nil {
			for _, m := range append(m.Events, m) {
				if m.Type == "sessions" {
					tb.Fatalf("a console received the internal sessions event")
				}
			}
			continue
		}
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			tb.Fatalf("feed ended: %v, want it open", err)
		}
		return
	}
}

// TestLiveEndsAtOnce: signing out, a password reset, disabling a user and
// changing a role close that user's feeds at once (4401), without waiting
// for the recheck; other feeds stay open and never see why.
func TestLiveEndsAtOnce(t *testing.T) {
	e := newEnv(t) // the default recheck: seconds, longer than the test waits
	ctx := context.Background()
	admin, _ := e.acc.Authenticate(ctx, e.tokens["admin"])
	watcher := e.live(t, "", bearer(e.tokens["admin"]))
	read(t, watcher)
	const within = time.Second
	pw := userPass // the reset changes it
	tests := []struct {
		name string
		end  func(tok string) error
		all  bool // every session of the user, or only tok's
	}{
		{"sign out", func(tok string) error {
			if r := e.do(t, "DELETE", "/api/v1/sessions", "", bearer(tok)); r.status != http.StatusNoContent {
				return fmt.Errorf("sign out: %d %s", r.status, r.body)
			}
			return nil
		}, false},
		{"reset password", func(string) (err error) { pw, err = e.acc.ResetPassword(ctx, admin, "disp-a"); return err }, true},
		{"disable", func(string) error {
			if r := e.do(t, "PATCH", "/api/v1/users/disp-a", `{"disabled":true}`, bearer(e.tokens["admin"])); r.status != http.StatusOK {
				return fmt.Errorf("disable: %d %s", r.status, r.body)
			}
			_, err := e.acc.SetDisabled(ctx, admin, "disp-a", false)
			return err
		}, true},
		{"change role", func(string) error {
			_, err := e.acc.SetRole(ctx, admin, "disp-a", dispatch.RoleIntegrator, countyA)
			return err
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, two := e.login(t, "disp-a", pw), e.login(t, "disp-a", pw)
			feeds := []*websocket.Conn{e.live(t, "", bearer(one)), e.live(t, "", bearer(one)), e.live(t, "", cookie(two, e.url))}
			other := e.live(t, "", bearer(e.tokens["disp-b"]))
			for _, c := range append(feeds, other) {
				read(t, c)
			}
			if err := tt.end(one); err != nil {
				t.Fatal(err)
			}
			wantClose(t, feeds[0], 4401, within)
			wantClose(t, feeds[1], 4401, within)
			if tt.all {
				wantClose(t, feeds[2], 4401, within)
			} else {
				stillOpen(t, feeds[2])
			}
			stillOpen(t, other)
			stillOpen(t, watcher)
		})
	}
}

// TestLiveLimits: a session and a user hold a bounded number of live
// feeds; one more is closed at once with 4429, which a browser can read
// (it sees no status of a refused upgrade). Closing a feed frees its
// place; other users are not affected.
func TestLiveLimits(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.LivePerSession, c.LivePerUser = 2, 3 })
	one, two := e.login(t, "disp-a", userPass), e.login(t, "disp-a", userPass)
	open := func(tok string) *websocket.Conn {
		t.Helper()
		c := e.live(t, "", bearer(tok))
		if m := read(t, c); m.Type != "snapshot" {
			t.Fatalf("first message %s", m.Type)
		}
		return c
	}
	refused := func(tok string, why string) {
		t.Helper()
		c := e.live(t, "", bearer(tok)) // the upgrade succeeds ...
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage() // ... and the feed closes before any message
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4429 || !strings.Contains(ce.Text, why) {
			t.Fatalf("one feed too many: %v, want close 4429 saying %q", err, why)
		}
	}
	first := open(one)
	open(one)
	refused(one, "on this sign-in")
	open(two)
	refused(two, "for disp-a")
	open(e.tokens["disp-b"]) // another user
	if got := counter(t, e, "lifeline_live_refused_total", "by", "session") + counter(t, e, "lifeline_live_refused_total", "by", "user"); got != 2 {
		t.Fatalf("lifeline_live_refused_total = %v, want 2", got)
	}
	first.Close()
	waitFor(t, "a closed feed's place freed", func() bool {
		c, _, err := e.dial(t, "", bearer(one))
		if err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m message
		if c.ReadJSON(&m) == nil && m.Type == "snapshot" {
			return true
		}
		c.Close()
		return false
	})
}

// counter returns the value of a counter with one label in e's registry
// (label "": a counter without labels).
func counter(tb testing.TB, e *env, name, label, value string) float64 {
	tb.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" { // a counter without labels
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	tb.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

func waitFor(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
