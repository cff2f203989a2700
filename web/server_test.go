package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/web"
)

// TestRefused sends requests that must be refused and checks the status,
// the error code, the rejection metric, and that nothing changed.
func TestRefused(t *testing.T) {
	e := newEnv(t)
	incA, incB := e.incident(t, centreA), e.incident(t, centreB)
	big := `{"location":{"lat":29.2,"lon":105},"priority":2,"category":"other","address":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		as         auth
		wantStatus int
		wantCode   string
		wantReason string
	}{
		{"no token/create incident", "POST", "/api/v1/incidents", callJSON(centreA), noAuth, 401, "unauthorized", "unauthorized"},
		{"no token/read incidents", "GET", "/api/v1/incidents", "", noAuth, 401, "unauthorized", "unauthorized"},
		{"no token/units", "GET", "/api/v1/units", "", noAuth, 401, "unauthorized", "unauthorized"},
		{"no token/area", "GET", "/api/v1/area", "", noAuth, 401, "unauthorized", "unauthorized"},
		{"no token/unknown endpoint", "GET", "/api/v1/nothing", "", noAuth, 401, "unauthorized", "unauthorized"},
		{"no token/create user", "POST", "/api/v1/users", `{"username":"x","password":"long enough pw","role":"admin"}`, noAuth, 401, "unauthorized", "unauthorized"},
		{"invalid token/assign", "POST", "/api/v1/incidents/" + incA.ID + "/assignments", `{"unit":"U01"}`, bearer("not-a-token"), 401, "unauthorized", "unauthorized"},
		{"not bearer/create incident", "POST", "/api/v1/incidents", callJSON(centreA), func(r *http.Request) { r.Header.Set("Authorization", "Basic YWRtaW46eA==") }, 401, "unauthorized", "unauthorized"},
		{"wrong role/integrator assigns", "POST", "/api/v1/incidents/" + incA.ID + "/assignments", `{"unit":"U01"}`, bearer(e.tokens["integ"]), 403, "forbidden", "forbidden"},
		{"wrong role/dispatcher creates a user", "POST", "/api/v1/users", `{"username":"mallory","password":"long enough pw","role":"admin"}`, bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong role/city user creates a user", "POST", "/api/v1/users", `{"username":"mallory","password":"long enough pw","role":"admin"}`, bearer(e.tokens["city"]), 403, "forbidden", "forbidden"},
		{"wrong role/dispatcher lists users", "GET", "/api/v1/users", "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong role/dispatcher rotates credentials", "POST", "/api/v1/units/U01/credentials", "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong county/create incident", "POST", "/api/v1/incidents", callJSON(centreA), bearer(e.tokens["disp-b"]), 403, "forbidden", "forbidden"},
		{"wrong county/read incident", "GET", "/api/v1/incidents/" + incA.ID, "", bearer(e.tokens["disp-b"]), 403, "forbidden", "forbidden"},
		{"wrong county/recommendations", "GET", "/api/v1/incidents/" + incB.ID + "/recommendations", "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong county/assign to its call", "POST", "/api/v1/incidents/" + incB.ID + "/assignments", `{"unit":"N01"}`, bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		// Borrowing another county's unit asks its consent (202): TestConsentOverHTTP.
		{"wrong county/its consent policy", "PATCH", "/api/v1/jurisdictions/" + countyB, `{"consent":"auto"}`, bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong county/units scope", "GET", "/api/v1/units?jurisdiction=" + countyB, "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong county/unit", "GET", "/api/v1/units/N01", "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong county/track", "GET", "/api/v1/units/N01/track", "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong county/incidents scope", "GET", "/api/v1/incidents?jurisdiction=" + countyB, "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"wrong county/widen to the city", "GET", "/api/v1/incidents?jurisdiction=" + cityID, "", bearer(e.tokens["disp-a"]), 403, "forbidden", "forbidden"},
		{"oversized body", "POST", "/api/v1/incidents", big, bearer(e.tokens["disp-a"]), 413, "invalid", "too_large"},
		{"malformed JSON", "POST", "/api/v1/incidents", `{"location":{"lat":29.2,`, bearer(e.tokens["disp-a"]), 400, "invalid", "malformed"},
		{"malformed JSON/syntax", "POST", "/api/v1/incidents", `{"location" 1}`, bearer(e.tokens["disp-a"]), 400, "invalid", "malformed"},
		{"empty body", "POST", "/api/v1/incidents/" + incA.ID + "/assignments", "", bearer(e.tokens["disp-a"]), 400, "invalid", "malformed"},
		{"trailing data", "POST", "/api/v1/incidents/" + incA.ID + "/assignments", `{"unit":"U01"} {"unit":"U02"}`, bearer(e.tokens["disp-a"]), 400, "invalid", "malformed"},
		{"unknown field", "POST", "/api/v1/incidents", `{"location":{"lat":29.2,"lon":105},"priority":2,"category":"other","prio":1}`, bearer(e.tokens["disp-a"]), 400, "invalid", "unknown_field"},
		{"unknown field/user", "POST", "/api/v1/users", `{"username":"x1","password":"long enough pw","role":"dispatcher","jurisdiction":"510322","admin":true}`, bearer(e.tokens["admin"]), 400, "invalid", "unknown_field"},
		{"wrong type", "POST", "/api/v1/incidents", `{"location":{"lat":"29.2","lon":105},"priority":2,"category":"other"}`, bearer(e.tokens["disp-a"]), 400, "invalid", "wrong_type"},
		{"wrong type/not an object", "POST", "/api/v1/incidents/" + incA.ID + "/assignments", `["U01"]`, bearer(e.tokens["disp-a"]), 400, "invalid", "wrong_type"},
		{"invalid user", "POST", "/api/v1/users", `{"username":"x2","password":"short","role":"dispatcher","jurisdiction":"510322"}`, bearer(e.tokens["admin"]), 400, "invalid", ""},
		{"dispatcher of a city", "POST", "/api/v1/users", `{"username":"x3","password":"long enough pw","role":"dispatcher","jurisdiction":"510300"}`, bearer(e.tokens["admin"]), 400, "invalid", ""},
		{"unknown unit credentials", "POST", "/api/v1/units/NOPE/credentials", "", bearer(e.tokens["admin"]), 404, "not_found", ""},
		{"NUL/address", "POST", "/api/v1/incidents", `{"location":{"lat":29.2,"lon":105},"priority":2,"category":"other","address":"a\u0000"}`, bearer(e.tokens["disp-a"]), 400, "invalid", "malformed"},
		{"NUL/sign-in username", "POST", "/api/v1/sessions", `{"username":"admin\u0000","password":"x"}`, noAuth, 400, "invalid", "malformed"},
		{"escape/password", "POST", "/api/v1/users", `{"username":"x4","password":"long enough \u001b pw","role":"dispatcher","jurisdiction":"510322"}`, bearer(e.tokens["admin"]), 400, "invalid", "malformed"},
		{"tab/external id", "POST", "/api/v1/incidents", `{"location":{"lat":29.2,"lon":105},"priority":2,"category":"other","external_id":"a\tb","source":"cad"}`, bearer(e.tokens["disp-a"]), 400, "invalid", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.record(t)
			var was float64
			if tt.wantReason != "" {
				was = e.rejected(t, tt.wantReason)
			}
			got := e.do(t, tt.method, tt.path, tt.body, tt.as)
			if got.status != tt.wantStatus || got.code() != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, got.status, pretty(got.body), tt.wantStatus, tt.wantCode)
			}
			if got.status == 401 && got.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if after := e.record(t); after != before {
				t.Fatalf("a refused request changed the record: %+v -> %+v", before, after)
			}
			if tt.wantReason != "" {
				if now := e.rejected(t, tt.wantReason); now != was+1 {
					t.Errorf("lifeline_http_rejected_total{reason=%q} went %v -> %v, want +1", tt.wantReason, was, now)
				}
			}
		})
	}
	if u, _ := e.svc.Unit(dispatch.System, "N01"); u.Status != dispatch.Available {
		t.Fatalf("N01 is %s after refused assignments", u.Status)
	}
}

func TestExpiredToken(t *testing.T) {
	e := newEnv(t)
	tok := e.tokens["disp-a"]
	if r := e.do(t, "GET", "/api/v1/me", "", bearer(tok)); r.status != 200 {
		t.Fatalf("fresh token: %d %s", r.status, r.body)
	}
	e.clock.Add(12*time.Hour + time.Second)
	r := e.do(t, "POST", "/api/v1/incidents", callJSON(centreA), bearer(tok))
	if r.status != 401 || r.code() != "unauthorized" || !strings.Contains(string(r.body), "session expired") {
		t.Fatalf("expired token: %d %s, want 401 session expired", r.status, r.body)
	}
	if incs, _ := e.svc.Incidents(context.Background(), dispatch.System, dispatch.IncidentFilter{}); len(incs) != 0 {
		t.Fatal("an expired token created an incident")
	}
}

func TestSessions(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/sessions", `{"username":"disp-a","password":"`+userPass+`"}`, noAuth)
	if r.status != http.StatusCreated {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var s struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	r.decode(t, &s)
	if s.Token == "" || !s.ExpiresAt.Equal(clock0.Add(12*time.Hour)) {
		t.Fatalf("login reply %s", r.body)
	}
	c := sessionCookie(t, r.header)
	if c.Value != s.Token || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Fatalf("cookie %+v: want the token, HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", c)
	}

	t.Run("wrong password", func(t *testing.T) {
		r := e.do(t, "POST", "/api/v1/sessions", `{"username":"disp-a","password":"wrong-password"}`, noAuth)
		u := e.do(t, "POST", "/api/v1/sessions", `{"username":"nobody","password":"wrong-password"}`, noAuth)
		if r.status != 401 || r.code() != "unauthorized" || string(r.body) != string(u.body) {
			t.Fatalf("wrong password %d %s; unknown user %d %s: want the same 401", r.status, r.body, u.status, u.body)
		}
		if r.header.Get("Set-Cookie") != "" {
			t.Fatal("a failed login set a cookie")
		}
	})
	t.Run("missing fields", func(t *testing.T) {
		if r := e.do(t, "POST", "/api/v1/sessions", `{"username":"disp-a"}`, noAuth); r.status != 400 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("cross-origin login", func(t *testing.T) {
		r := e.do(t, "POST", "/api/v1/sessions", `{"username":"disp-a","password":"`+userPass+`"}`, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") })
		if r.status != 403 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("me by bearer", func(t *testing.T) {
		var me struct{ Username, Role, Jurisdiction, JurisdictionName string }
		r := e.do(t, "GET", "/api/v1/me", "", bearer(s.Token))
		r.decode(t, &me)
		if r.status != 200 || me.Username != "disp-a" || me.Role != "dispatcher" || me.Jurisdiction != countyA {
			t.Fatalf("me = %d %s", r.status, r.body)
		}
		if !strings.Contains(string(r.body), `"jurisdiction_name":"county A"`) {
			t.Errorf("me without the jurisdiction's name: %s", r.body)
		}
	})
	t.Run("me by cookie", func(t *testing.T) {
		if r := e.do(t, "GET", "/api/v1/me", "", cookie(s.Token, "")); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	same := e.url
	t.Run("cookie and same origin", func(t *testing.T) {
		r := e.do(t, "POST", "/api/v1/incidents", callJSON(centreA), cookie(s.Token, same))
		if r.status != 201 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = e.do(t, "POST", "/api/v1/incidents", callJSON(centreA), func(r *http.Request) {
			cookie(s.Token, "")(r)
			r.Header.Set("Referer", same+"/")
		})
		if r.status != 201 {
			t.Fatalf("by Referer: %d %s", r.status, r.body)
		}
	})
	for _, tt := range []struct {
		name string
		as   auth
	}{
		{"cross origin", cookie(s.Token, "https://evil.example")},
		{"null origin", cookie(s.Token, "null")},
		{"same host other port", cookie(s.Token, "http://127.0.0.1:1")},
		{"no origin nor referer", cookie(s.Token, "")},
		{"cross-site referer", func(r *http.Request) { cookie(s.Token, "")(r); r.Header.Set("Referer", "https://evil.example/x") }},
	} {
		t.Run("cookie refused/"+tt.name, func(t *testing.T) {
			before := e.record(t)
			r := e.do(t, "POST", "/api/v1/incidents", callJSON(centreA), tt.as)
			if r.status != 403 || r.code() != "forbidden" {
				t.Fatalf("%d %s, want 403", r.status, r.body)
			}
			if after := e.record(t); after != before {
				t.Fatalf("changed: %+v -> %+v", before, after)
			}
		})
	}
	t.Run("bearer from any origin", func(t *testing.T) {
		r := e.do(t, "POST", "/api/v1/incidents", callJSON(centreA), func(r *http.Request) {
			bearer(s.Token)(r)
			r.Header.Set("Origin", "https://city-ems.example")
		})
		if r.status != 201 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("logout", func(t *testing.T) {
		if r := e.do(t, "DELETE", "/api/v1/sessions", "", cookie(s.Token, "https://evil.example")); r.status != 403 {
			t.Fatalf("cross-origin logout: %d %s", r.status, r.body)
		}
		r := e.do(t, "DELETE", "/api/v1/sessions", "", cookie(s.Token, same))
		if r.status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}
		if c := sessionCookie(t, r.header); c.Value != "" || c.MaxAge >= 0 {
			t.Errorf("logout did not clear the cookie: %+v", c)
		}
		if r := e.do(t, "GET", "/api/v1/me", "", bearer(s.Token)); r.status != 401 {
			t.Fatalf("me after logout: %d", r.status)
		}
	})
}

func sessionCookie(tb testing.TB, h http.Header) *http.Cookie {
	tb.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == web.CookieName {
			return c
		}
	}
	tb.Fatalf("no %s cookie in %v", web.CookieName, h["Set-Cookie"])
	return nil
}

func TestOpenEndpoints(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/livez", "/readyz", "/metrics", "/", "/app.js", "/app.css"} {
		t.Run(path, func(t *testing.T) {
			if r := e.do(t, "GET", path, "", noAuth); r.status != 200 {
				t.Fatalf("GET %s = %d", path, r.status)
			}
		})
	}
	r := e.do(t, "GET", "/", "", noAuth)
	for _, id := range []string{`id="login-form"`, `id="login-username"`, `id="login-password"`, `id="login-submit"`, `id="logout"`, `id="whoami"`} {
		if !strings.Contains(string(r.body), id) {
			t.Errorf("the console has no %s", id)
		}
	}
	if r.header.Get("X-Frame-Options") != "DENY" {
		t.Error("the console may be framed by another site")
	}
}

func TestUsersAndCredentials(t *testing.T) {
	e := newEnv(t)
	admin := bearer(e.tokens["admin"])
	r := e.do(t, "POST", "/api/v1/users", `{"username":"cad-link","password":"integration-secret","role":"integrator","jurisdiction":"510322"}`, admin)
	if r.status != 201 || strings.Contains(string(r.body), "hash") || strings.Contains(string(r.body), "integration-secret") {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/api/v1/users", `{"username":"cad-link","password":"integration-secret","role":"integrator","jurisdiction":"510322"}`, admin); r.status != 409 {
		t.Fatalf("the same user again: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/api/v1/sessions", `{"username":"cad-link","password":"integration-secret"}`, noAuth); r.status != 201 {
		t.Fatalf("the new user cannot sign in: %d %s", r.status, r.body)
	}

	var cred struct{ Username, Password string }
	r = e.do(t, "POST", "/api/v1/units/U01/credentials", "", admin)
	r.decode(t, &cred)
	if r.status != 201 || cred.Username != "U01" || len(cred.Password) < 20 {
		t.Fatalf("credentials: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	if !e.acc.AuthenticateUnit(ctx, "U01", cred.Password) {
		t.Fatal("the unit's new password does not work")
	}
	old := cred.Password
	e.do(t, "POST", "/api/v1/units/U01/credentials", "", admin).decode(t, &cred)
	if cred.Password == old || e.acc.AuthenticateUnit(ctx, "U01", old) || !e.acc.AuthenticateUnit(ctx, "U01", cred.Password) {
		t.Fatal("calling again did not rotate the password")
	}
}

func TestAssignOverHTTP(t *testing.T) {
	e := newEnv(t)
	inc := e.incident(t, centreA)
	r := e.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", `{"unit":"U01"}`, bearer(e.tokens["disp-a"]))
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var a dispatch.Assignment
	r.decode(t, &a)
	if a.By != "disp-a" {
		t.Fatalf("assignment by %q, want disp-a", a.By)
	}
	r = e.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", `{"unit":"N01"}`, bearer(e.tokens["city"]))
	if r.status != 201 {
		t.Fatalf("a city user sending another county's unit: %d %s", r.status, r.body)
	}
}

// TestTLS serves HTTPS with a self-signed certificate made here.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	e := newEnv(t, func(c *web.Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get(e.url + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("GET /livez over TLS: %d", res.StatusCode)
	}
	res, err = client.Post(e.url+"/api/v1/sessions", "application/json", strings.NewReader(`{"username":"admin","password":"`+adminPass+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if c := sessionCookie(t, res.Header); res.StatusCode != 201 || !c.Secure {
		t.Fatalf("login over TLS: %d, cookie Secure=%v", res.StatusCode, c.Secure)
	}
	// A plain request gets net/http's 400 for HTTP on an HTTPS port, never the API.
	if res, err := http.Get("http://" + e.srv.Addr().String() + "/livez"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the TLS port: %d", res.StatusCode)
		}
	}
	if _, err := web.New(web.Config{Addr: "127.0.0.1:0", Dispatch: e.svc, Events: dispatch.NewBus(), Access: e.acc, TLS: &tls.Config{}}); err == nil {
		t.Fatal("a TLS configuration without a certificate was accepted")
	}
}

func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lifeline test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestEndAndStandDownOverHTTP: a call is cancelled or closed with an
// outcome over the API, a unit stood down, and each wrong request is
// refused with nothing changed.
func TestEndAndStandDownOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.move(t, "U01", centreA)
	inc := e.incident(t, centreA)
	r := e.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", `{"unit":"U01"}`, bearer(e.tokens["disp-a"]))
	if r.status != 201 {
		t.Fatalf("assign: %d %s", r.status, r.body)
	}
	var a dispatch.Assignment
	r.decode(t, &a)
	path := "/api/v1/incidents/" + inc.ID
	refused := []struct {
		name   string
		method string
		path   string
		body   string
		as     auth
		status int
		code   string
	}{
		{"close a live call", "PATCH", path, `{"status":"closed","outcome":"done"}`, bearer(e.tokens["disp-a"]), 409, "conflict"},
		{"no status", "PATCH", path, `{"outcome":"done"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"reopen is not an end", "PATCH", path, `{"status":"open"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"unknown field", "PATCH", path, `{"status":"cancelled","why":"x"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"NUL in the outcome", "PATCH", path, `{"status":"cancelled","outcome":"a\u0000b"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"integrator", "PATCH", path, `{"status":"cancelled"}`, bearer(e.tokens["integ"]), 403, "forbidden"},
		{"other county", "PATCH", path, `{"status":"cancelled"}`, bearer(e.tokens["disp-b"]), 403, "forbidden"},
		{"no token", "PATCH", path, `{"status":"cancelled"}`, noAuth, 401, "unauthorized"},
		{"unknown call", "PATCH", "/api/v1/incidents/INC-404", `{"status":"cancelled"}`, bearer(e.tokens["disp-a"]), 404, "not_found"},
		{"stand down: other county", "DELETE", path + "/assignments/" + a.ID, "", bearer(e.tokens["disp-b"]), 403, "forbidden"},
		{"stand down: unknown assignment", "DELETE", path + "/assignments/ASG-404", "", bearer(e.tokens["disp-a"]), 404, "not_found"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.body, tt.as)
			if r.status != tt.status || r.code() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			got, err := e.svc.Incident(context.Background(), dispatch.System, inc.ID)
			if err != nil || got.Status != dispatch.IncidentAssigned {
				t.Fatalf("incident %v %v after a refusal", got, err)
			}
		})
	}
	r = e.do(t, "DELETE", path+"/assignments/"+a.ID+"?reason=wrong+unit", "", bearer(e.tokens["disp-a"]))
	if r.status != 200 {
		t.Fatalf("stand down: %d %s", r.status, r.body)
	}
	var stood dispatch.Assignment
	r.decode(t, &stood)
	if stood.Status != dispatch.AssignCancelled || stood.Reason != "wrong unit" {
		t.Fatalf("stood down %+v", stood)
	}
	r = e.do(t, "PATCH", path, `{"status":"closed","outcome":"caller went by car"}`, bearer(e.tokens["disp-a"]))
	if r.status != 200 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	var closed dispatch.Incident
	r.decode(t, &closed)
	if closed.Status != dispatch.IncidentClosed || closed.Outcome != "caller went by car" {
		t.Fatalf("closed %+v", closed)
	}
	if r := e.do(t, "PATCH", path, `{"status":"cancelled"}`, bearer(e.tokens["disp-a"])); r.status != 409 {
		t.Fatalf("ending a closed call: %d %s", r.status, r.body)
	}
}
