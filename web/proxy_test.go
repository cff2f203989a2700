package web_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/lifeline-ems/lifeline/web"
)

// TestTrustedProxies: behind a trusted reverse proxy, one client's failed
// logins use up its own budget, not everybody's; without the trust, a
// client cannot dodge its budget by forging X-Forwarded-For. (The budget
// that refuses is per username and address: see dispatch's throttle.)
func TestTrustedProxies(t *testing.T) {
	loopback := &net.IPNet{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)}
	login := func(e *env, user, password, forwardedFor string) int {
		t.Helper()
		r := e.do(t, "POST", "/api/v1/sessions", `{"username":"`+user+`","password":"`+password+`"}`, func(req *http.Request) {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		})
		return r.status
	}
	exhaust := func(e *env, forwardedFor string) {
		t.Helper()
		for range 10 { // more than one address's failures allowed for one username
			login(e, "disp-b", "wrong-password-123", forwardedFor)
		}
		if got := login(e, "disp-b", userPass, forwardedFor); got != http.StatusUnauthorized {
			t.Fatalf("after 10 failures from %s a login still passed: %d", forwardedFor, got)
		}
	}

	t.Run("trusted", func(t *testing.T) {
		e := newEnv(t, func(c *web.Config) { c.TrustedProxies = []*net.IPNet{loopback} })
		exhaust(e, "10.0.0.1")
		if got := login(e, "disp-b", userPass, "10.0.0.2"); got != http.StatusCreated {
			t.Fatalf("another client behind the proxy was locked out: %d", got)
		}
	})
	t.Run("not trusted", func(t *testing.T) {
		e := newEnv(t)
		exhaust(e, "10.0.0.1")
		if got := login(e, "disp-b", userPass, "10.0.0.2"); got != http.StatusUnauthorized {
			t.Fatalf("a forged X-Forwarded-For escaped the limit: %d", got)
		}
	})
}
