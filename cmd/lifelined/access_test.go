package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
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

// signIn posts a sign-in as if from client (the server trusts the test's
// loopback as its reverse proxy) and returns the status and error message.
func signIn(tb testing.TB, s *server, user, password, client string) (int, string) {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, _ := http.NewRequest("POST", s.url("/api/v1/sessions"), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Message
}

// TestSignInThrottle: on the real server, guesses at admin from rotating
// addresses never lock admin out; a guesser at one username from one
// address is refused at once; a control room behind one address is not
// shut out by one user's failures.
func TestSignInThrottle(t *testing.T) {
	m := startMain(t, func(c *Config) { c.TrustedProxies = "127.0.0.1" })
	for _, name := range []string{"li", "wang"} {
		user := map[string]string{"username": name, "password": name + "-password-123", "role": "dispatcher", "jurisdiction": "510322"}
		if code := m.do(t, "POST", "/api/v1/users", user, nil); code != http.StatusCreated {
			t.Fatalf("create %s: %d", name, code)
		}
	}

	t.Run("rotating addresses", func(t *testing.T) {
		// 20 at once, each checked by a real bcrypt: past the old lockout
		// (5) and the slowdown's cap (10); TestLoginRotatingGuesses in
		// dispatch sends 50 on a test clock.
		var wg sync.WaitGroup
		codes := make([]int, 20)
		for i := range codes {
			wg.Go(func() {
				codes[i], _ = signIn(t, m, "admin", fmt.Sprint("guess-number-", i), fmt.Sprint("198.51.100.", i))
			})
		}
		wg.Wait()
		for i, code := range codes {
			if code != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d", i, code)
			}
		}
		start := time.Now()
		if code, msg := signIn(t, m, "admin", testAdminPassword, "203.0.113.9"); code != http.StatusCreated {
			t.Fatalf("admin's right password from a fresh address after 20 guesses: %d %s", code, msg)
		}
		t.Logf("admin signed in after %s", time.Since(start))
		metrics := get(t, m.url("/metrics"))
		if !strings.Contains(metrics, `lifeline_signin_throttled_total{action="delayed",by="user"}`) {
			t.Error("/metrics does not count slowed sign-ins")
		}
	})

	t.Run("one address, one username", func(t *testing.T) {
		const nat = "10.8.0.1"
		for i := range 25 {
			code, msg := signIn(t, m, "li", "wrong-password-x", nat)
			if code != http.StatusUnauthorized || (i >= 5) != strings.Contains(msg, "too many") {
				t.Fatalf("attempt %d: %d %q; want 401, saying too many from the sixth on", i+1, code, msg)
			}
		}
		if code, msg := signIn(t, m, "wang", "wang-password-123", nat); code != http.StatusCreated {
			t.Fatalf("wang behind the same address: %d %s", code, msg)
		}
		if code, msg := signIn(t, m, "li", "li-password-123", "10.8.0.2"); code != http.StatusCreated {
			t.Fatalf("li from another address: %d %s", code, msg)
		}
	})
}

// TestLiveLimits: on the real server with its defaults, one sign-in holds
// at most 4 live feeds and one user 16; the next is closed with 4429.
func TestLiveLimits(t *testing.T) {
	m := startMain(t, nil)
	tooMany := func(tok string) int {
		c, resp, err := websocket.DefaultDialer.Dial("ws://"+m.HTTPAddr().String()+"/api/v1/live", http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatalf("dial live: %v (%v)", err, resp)
		}
		defer c.Close()
		return closedWith(c, 5*time.Second)
	}
	tokens := []string{m.token}
	for range 3 {
		tokens = append(tokens, m.login(t, "admin", testAdminPassword))
	}
	for i, tok := range tokens {
		for range 4 {
			liveAs(t, m, tok)
		}
		if i == 0 {
			if code := tooMany(tok); code != 4429 {
				t.Fatalf("a fifth feed on one sign-in: close code %d, want 4429", code)
			}
		}
	}
	if code := tooMany(m.login(t, "admin", testAdminPassword)); code != 4429 {
		t.Fatalf("a seventeenth feed of one user: close code %d, want 4429", code)
	}
}
