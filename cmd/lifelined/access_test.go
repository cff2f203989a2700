package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// liveAs opens the live feed with token and reads its snapshot.
func liveAs(tb testing.TB, s *server, token string) *websocket.Conn {
	tb.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTPAddr().String()+"/api/v1/live", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		tb.Fatalf("dial live: %v (%v)", err, resp)
	}
	tb.Cleanup(func() { c.Close() })
	var first struct{ Type string }
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.ReadJSON(&first); err != nil || first.Type != "snapshot" {
		tb.Fatalf("first message %q, %v: want the snapshot", first.Type, err)
	}
	return c
}

// closedWith waits up to d for the server to close c and returns the
// close code (0 when c was still open after d).
func closedWith(c *websocket.Conn, d time.Duration) int {
	_ = c.SetReadDeadline(time.Now().Add(d))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return 0
	}
}

// TestSessionsEnd: on the real server, a sign-out closes that session's
// live feed within a second; disabling and re-enabling a user brings none
// of its old tokens back; lifelined admin reset-password, run beside the
// server on its data directory, ends the user's tokens at once and its
// live feed at the feed's next recheck.
func TestSessionsEnd(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.DataDir = dir })
	const pw = "li-password-123"
	user := map[string]string{"username": "li", "password": pw, "role": "dispatcher", "jurisdiction": "510322"}
	if code := m.do(t, "POST", "/api/v1/users", user, nil); code != http.StatusCreated {
		t.Fatalf("create user: %d", code)
	}
	works := func(tok string) bool {
		code, err := requestJSON(tok, "GET", m.url("/api/v1/me"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return code == http.StatusOK
	}

	t.Run("sign out", func(t *testing.T) {
		a, b := m.login(t, "li", pw), m.login(t, "li", pw)
		feedA, feedB := liveAs(t, m, a), liveAs(t, m, b)
		if code, _ := requestJSON(a, "DELETE", m.url("/api/v1/sessions"), nil, nil); code != http.StatusNoContent {
			t.Fatalf("sign out: %d", code)
		}
		if code := closedWith(feedA, time.Second); code != 4401 {
			t.Fatalf("the signed-out feed: close code %d within a second, want 4401", code)
		}
		if works(a) || !works(b) {
			t.Fatalf("after signing out a: a works %v, b works %v; want only b", works(a), works(b))
		}
		if code := closedWith(feedB, 200*time.Millisecond); code != 0 {
			t.Fatalf("another session's feed closed with %d", code)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		tok := m.login(t, "li", pw)
		feed := liveAs(t, m, tok)
		for _, disabled := range []bool{true, false} {
			if code := m.do(t, "PATCH", "/api/v1/users/li", map[string]bool{"disabled": disabled}, nil); code != http.StatusOK {
				t.Fatalf("disabled=%v: %d", disabled, code)
			}
		}
		if code := closedWith(feed, time.Second); code != 4401 {
			t.Fatalf("the disabled user's feed: close code %d, want 4401", code)
		}
		if works(tok) {
			t.Fatal("a token from before the user was disabled works again after re-enabling")
		}
		if !works(m.login(t, "li", pw)) {
			t.Fatal("the re-enabled user cannot sign in")
		}
	})

	t.Run("reset-password beside the server", func(t *testing.T) {
		tok := m.login(t, "li", pw)
		feed := liveAs(t, m, tok)
		var out, errOut strings.Builder
		if err := run(context.Background(), []string{"admin", "reset-password", "--user", "li", "--data-dir", dir}, &out, &errOut); err != nil {
			t.Fatalf("reset-password: %v\n%s", err, errOut.String())
		}
		if works(tok) {
			t.Fatal("a token from before the reset still works")
		}
		_, newPw, _ := strings.Cut(strings.TrimSpace(out.String()), "(shown once): ")
		if !works(m.login(t, "li", newPw)) {
			t.Fatal("the new password does not sign in")
		}
		// Another process cannot tell this server's feeds: they end at
		// their next session recheck (every 5 s).
		if code := closedWith(feed, recheckWait); code != 4401 {
			t.Fatalf("the feed after the reset: close code %d within %s, want 4401", code, recheckWait)
		}
	})
}

// recheckWait is the live feed's recheck period and a margin.
const recheckWait = 7 * time.Second
