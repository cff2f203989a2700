package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// strict decodes body as the API does: one JSON object, no unknown
// fields, nothing after it.
func strict(body []byte, v any) bool {
	if len(body) > 64<<10 {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// post sends body to path through the handler, without the network.
func (e *env) post(path string, body []byte, remote string, a auth) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.RemoteAddr = remote
	a(req)
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// checkError checks that a refusal is the contract's error body.
func checkError(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	var v struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.Error.Code == "" || v.Error.Message == "" {
		t.Fatalf("status %d with body %q: want the error body", rec.Code, rec.Body.Bytes())
	}
	if rec.Code >= 500 {
		t.Fatalf("status %d for client input: %s", rec.Code, rec.Body.Bytes())
	}
}

func FuzzCreateIncident(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	for _, s := range []string{
		callJSON(centreA), callJSON(centreB), callJSON(orb.Point{116.4, 39.9}),
		`{"location":{"lat":29.2,"lon":105},"address":"富世镇","priority":1,"category":"stroke","external_id":"x-1","source":"city"}`,
		// The same call again: a replay, answered 201 with nothing new stored.
		`{"location":{"lat":29.2,"lon":105},"address":"富世镇","priority":1,"category":"stroke","external_id":"x-1","source":"city"}`,
		`{"location":{"lat":29.2,"lon":105},"priority":5,"category":"other"}`,
		`{"location":{"lat":29.2,"lon":105},"priority":1,"category":"burns"}`,
		`{"location":{"lat":"29.2","lon":105},"priority":1,"category":"other"}`,
		`{"location":{"lat":29.2,"lon":105},"priority":1,"category":"other","extra":1}`,
		`{"location":{"lat":1e400,"lon":105},"priority":1,"category":"other"}`,
		`{}`, `null`, `[]`, `"x"`, ``, `{`, `{"location":null}`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	area := e.svc.Area()
	f.Fuzz(func(t *testing.T, body []byte) {
		before, _ := e.svc.Incidents(ctx, dispatch.System, dispatch.IncidentFilter{})
		rec := e.post("/api/v1/incidents", body, "192.0.2.1:1", bearer(e.tokens["disp-a"]))
		after, _ := e.svc.Incidents(ctx, dispatch.System, dispatch.IncidentFilter{})

		var n dispatch.NewIncident
		valid := strict(body, &n) && n.Validate() == nil
		if valid {
			j, _, ok := area.Locate(orb.Point{n.Location.Lon, n.Location.Lat})
			valid = ok && j.ID == countyA // disp-a may take calls in county A only
		}
		replayed := rec.Header().Get("Idempotent-Replayed") == "true"
		switch {
		case rec.Code == http.StatusCreated && replayed:
			// A call taken before (same source and external_id): the same
			// answer, nothing new stored.
			if !valid || n.ExternalID == "" || len(after) != len(before) {
				t.Fatalf("replayed 201 for %q (valid %v), incidents %d -> %d", body, valid, len(before), len(after))
			}
		case rec.Code == http.StatusCreated:
			if !valid || len(after) != len(before)+1 {
				t.Fatalf("201 for %q (valid %v), incidents %d -> %d", body, valid, len(before), len(after))
			}
		default:
			checkError(t, rec)
			if valid {
				t.Fatalf("valid call %q refused: %d %s", body, rec.Code, rec.Body.Bytes())
			}
			if len(after) != len(before) {
				t.Fatalf("refused %q but stored an incident", body)
			}
		}
	})
}

func FuzzSession(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	for _, s := range []string{
		`{"username":"admin","password":"` + adminPass + `"}`,
		`{"username":"disp-a","password":"` + userPass + `"}`,
		`{"username":"admin","password":"wrong"}`,
		`{"username":"admin"}`, `{"username":"admin","password":"` + adminPass + `","x":1}`,
		`{"username":1,"password":2}`, `{}`, `null`, `[]`, ``, `{"username":"admin","password":"` + adminPass + `"} x`,
	} {
		f.Add([]byte(s))
	}
	logins := func() int {
		log, _ := e.audit.AuditLog(ctx, 0, 0)
		n := 0
		for _, x := range log {
			if x.Action == dispatch.AuditLogin {
				n++
			}
		}
		return n
	}
	exec := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		exec++
		e.clock.Add(time.Minute) // refill the limiters on failed attempts
		before := logins()
		rec := e.post("/api/v1/sessions", body, fmt.Sprintf("10.%d.%d.%d:1", exec>>16&255, exec>>8&255, exec&255), noAuth)
		after := logins()

		var req struct{ Username, Password string }
		valid := strict(body, &req) &&
			((req.Username == "admin" && req.Password == adminPass) || (req.Username == "disp-a" && req.Password == userPass))
		if rec.Code/100 == 2 {
			var s struct {
				Token     string    `json:"token"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			if !valid || json.Unmarshal(rec.Body.Bytes(), &s) != nil || s.Token == "" || after != before+1 {
				t.Fatalf("%d for %q (valid %v): %s", rec.Code, body, valid, rec.Body.Bytes())
			}
			if _, err := e.acc.Authenticate(ctx, s.Token); err != nil {
				t.Fatalf("the token of a successful sign-in does not work: %v", err)
			}
			return
		}
		checkError(t, rec)
		if rec.Header().Get("Set-Cookie") != "" || strings.Contains(rec.Body.String(), "token") || after != before {
			t.Fatalf("refused %q (%d) but opened a session: %v %s", body, rec.Code, rec.Header()["Set-Cookie"], rec.Body.Bytes())
		}
		if valid && rec.Code != http.StatusUnauthorized {
			t.Fatalf("valid credentials %q: %d %s", body, rec.Code, rec.Body.Bytes())
		}
	})
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func FuzzCreateUser(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	for _, s := range []string{
		`{"username":"wang","password":"long enough pw","role":"dispatcher","jurisdiction":"510322"}`,
		`{"username":"zhao","password":"long enough pw","role":"city","jurisdiction":"510300"}`,
		`{"username":"cad","password":"long enough pw","role":"integrator","jurisdiction":"510302"}`,
		`{"username":"root2","password":"long enough pw","role":"admin"}`,
		`{"username":"x","password":"short","role":"dispatcher","jurisdiction":"510322"}`,
		`{"username":"y","password":"long enough pw","role":"dispatcher","jurisdiction":"510300"}`,
		`{"username":"Z","password":"long enough pw","role":"dispatcher","jurisdiction":"510322"}`,
		`{"username":"q","password":"long enough pw","role":"root","jurisdiction":"510322"}`,
		`{"username":"admin","password":"long enough pw","role":"admin"}`,
		`{"username":"w","password":"long enough pw","role":"admin","is_admin":true}`,
		`{}`, `null`, `[]`, ``, `{"username":5}`,
	} {
		f.Add([]byte(s))
	}
	users := func() []*dispatch.User { us, _ := e.users.ListUsers(ctx); return us }
	jurs := map[dispatch.Role][]string{
		dispatch.RoleDispatcher: {countyA, countyB}, dispatch.RoleCity: {cityID},
		dispatch.RoleIntegrator: {cityID, countyA, countyB}, dispatch.RoleAdmin: {"", cityID, countyA, countyB},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := users()
		rec := e.post("/api/v1/users", body, "192.0.2.1:1", bearer(e.tokens["admin"]))
		after := users()

		var req struct {
			Username, Password string
			Role               dispatch.Role
			Jurisdiction       string
		}
		valid := strict(body, &req) && usernameRE.MatchString(req.Username) &&
			utf8.RuneCountInString(req.Password) >= 12 && len(req.Password) <= 72 &&
			telemetry.CheckText(req.Password, telemetry.FreeText) == nil && // no NUL or other control character

			slices.Contains(jurs[req.Role], req.Jurisdiction) &&
			!slices.ContainsFunc(before, func(u *dispatch.User) bool { return u.Username == req.Username })
		if rec.Code/100 == 2 {
			if !valid || rec.Code != http.StatusCreated || len(after) != len(before)+1 {
				t.Fatalf("%d for %q (valid %v), users %d -> %d", rec.Code, body, valid, len(before), len(after))
			}
			u, err := e.users.User(ctx, req.Username)
			if err != nil || u.Role != req.Role || u.Jurisdiction != req.Jurisdiction || strings.Contains(rec.Body.String(), u.PasswordHash) {
				t.Fatalf("created %+v, %v from %q; reply %s", u, err, body, rec.Body.Bytes())
			}
			return
		}
		checkError(t, rec)
		if valid {
			t.Fatalf("valid user %q refused: %d %s", body, rec.Code, rec.Body.Bytes())
		}
		if len(after) != len(before) {
			t.Fatalf("refused %q but stored a user", body)
		}
	})
}

// FuzzAnswerConsent: an answer to a consent request either is a valid
// decision, answered 200 and acted on, or is refused with the error body
// and changes nothing.
func FuzzAnswerConsent(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	for _, s := range []string{
		`{"decision":"accept"}`, `{"decision":"decline","reason":"busy"}`, `{"decision":"accept","reason":"` + strings.Repeat("x", 600) + `"}`,
		`{"decision":"maybe"}`, `{"decision":"ACCEPT"}`, `{"decision":1}`, `{"reason":"x"}`, `{"decision":"accept","extra":1}`,
		`{"decision":"decline","reason":"a\u0000b"}`, `{}`, `null`, `[]`, ``, `{`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	inc := e.incident(f, centreA)
	dispA := dispatch.Principal{Name: "disp-a", Role: dispatch.RoleDispatcher, Jurisdiction: countyA}
	ask := func(tb testing.TB) *dispatch.Consent {
		tb.Helper()
		_, c, err := e.svc.Request(ctx, dispA, inc.ID, "N01")
		if err != nil || c == nil {
			tb.Fatalf("ask: %+v %v", c, err)
		}
		return c
	}
	c := ask(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.post("/api/v1/consents/"+c.ID, body, "192.0.2.1:1", bearer(e.tokens["disp-b"]))
		got, err := e.svc.Consent(ctx, dispatch.System, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var req struct {
			Decision string `json:"decision"`
			Reason   string `json:"reason"`
		}
		valid := strict(body, &req) && (req.Decision == "accept" || req.Decision == "decline") &&
			len(req.Reason) <= 500 && utf8.ValidString(req.Reason) && !strings.ContainsFunc(req.Reason, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' || r == 0x7f })
		if rec.Code != http.StatusOK {
			checkError(t, rec)
			if valid || got.Status != dispatch.ConsentPending {
				t.Fatalf("%q refused (valid %v): %d %s; consent %s", body, valid, rec.Code, rec.Body.Bytes(), got.Status)
			}
			return
		}
		if !valid || string(got.Status) != map[string]string{"accept": "accepted", "decline": "declined"}[req.Decision] {
			t.Fatalf("%q answered 200 (valid %v): consent %s", body, valid, got.Status)
		}
		// A new request for the next input.
		if got.Assignment != "" {
			if _, err := e.svc.CancelAssignment(ctx, dispatch.System, inc.ID, got.Assignment, "fuzz"); err != nil {
				t.Fatal(err)
			}
		}
		c = ask(t)
	})
}
