package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
)

const adminPassword = "correct horse battery"

type accessFixture struct {
	acc   *dispatch.Access
	users *memory.Users
	audit *memory.Audit
	clock *dispatchtest.Clock
	area  *dispatch.Area
}

func newAccess(tb testing.TB, cost int) *accessFixture {
	tb.Helper()
	f := &accessFixture{users: memory.NewUsers(), audit: memory.NewAudit(), clock: dispatchtest.NewClock(clock0), area: testArea(tb, 2)}
	acc, err := dispatch.NewAccess(dispatch.AccessConfig{
		Users: f.users, Auditor: f.audit, Area: f.area, Cost: cost, Now: f.clock.Now, Logger: quiet,
	})
	if err != nil {
		tb.Fatal(err)
	}
	f.acc = acc
	return f
}

// boot creates the administrator with adminPassword and signs it in.
func (f *accessFixture) boot(tb testing.TB) dispatch.Principal {
	tb.Helper()
	if _, err := f.acc.Bootstrap(context.Background(), adminPassword); err != nil {
		tb.Fatal(err)
	}
	tok, _, err := f.acc.Login(context.Background(), "admin", adminPassword, "127.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := f.acc.Authenticate(context.Background(), tok)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	t.Run("password from the environment", func(t *testing.T) {
		f := newAccess(t, bcrypt.MinCost)
		once, err := f.acc.Bootstrap(ctx, adminPassword)
		if err != nil || once != "" {
			t.Fatalf("Bootstrap = %q, %v; want nothing to print", once, err)
		}
		u, err := f.users.User(ctx, "admin")
		if err != nil || u.Role != dispatch.RoleAdmin || u.Jurisdiction != "" {
			t.Fatalf("admin = %+v, %v", u, err)
		}
		if strings.Contains(u.PasswordHash, adminPassword) || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(adminPassword)) != nil {
			t.Fatal("the password is not stored as its bcrypt hash")
		}
	})
	t.Run("generated one-time password", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			f := newAccess(t, bcrypt.MinCost)
			once, err := f.acc.Bootstrap(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(once) < dispatch.MinPassword || seen[once] {
				t.Fatalf("one-time password %q: too short or repeated", once)
			}
			seen[once] = true
			if _, _, err := f.acc.Login(ctx, "admin", once, "r"); err != nil {
				t.Fatalf("sign in with the one-time password: %v", err)
			}
			hash := func() string { u, _ := f.users.User(ctx, "admin"); return u.PasswordHash }
			h := hash()
			again, err := f.acc.Bootstrap(ctx, "")
			if err != nil || again != "" {
				t.Fatalf("second Bootstrap = %q, %v; want nothing (printed once)", again, err)
			}
			if _, err := f.acc.Bootstrap(ctx, "another password!"); err != nil || hash() != h {
				t.Fatalf("a second Bootstrap changed the administrator's password (err %v)", err)
			}
		}
	})
	t.Run("short environment password refused", func(t *testing.T) {
		f := newAccess(t, bcrypt.MinCost)
		if _, err := f.acc.Bootstrap(ctx, "admin"); !errors.Is(err, dispatch.ErrInvalid) {
			t.Fatalf("err = %v, want invalid", err)
		}
		if _, err := f.users.User(ctx, "admin"); !errors.Is(err, dispatch.ErrNotFound) {
			t.Fatalf("admin created with a weak password")
		}
	})
}

func TestLoginSessions(t *testing.T) {
	ctx := context.Background()
	f := newAccess(t, bcrypt.MinCost)
	admin := f.boot(t)
	if _, err := f.acc.CreateUser(ctx, admin, "li.wei", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	tok, s, err := f.acc.Login(ctx, "li.wei", "dispatch-1234567", "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 || strings.ContainsAny(tok, "+/=") {
		t.Errorf("token %q: want 32 bytes in unpadded base64url", tok)
	}
	if !s.ExpiresAt.Equal(clock0.Add(12 * time.Hour)) {
		t.Errorf("expires %s, want a 12 h shift", s.ExpiresAt)
	}
	if _, err := f.users.Session(ctx, tok); err == nil {
		t.Error("the token is stored in clear")
	}
	if got, err := f.users.Session(ctx, dispatch.TokenHash(tok)); err != nil || got.Username != "li.wei" {
		t.Errorf("session by hash = %+v, %v", got, err)
	}
	p, err := f.acc.Authenticate(ctx, tok)
	want := dispatch.Principal{Name: "li.wei", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}
	if err != nil || p != want {
		t.Fatalf("Authenticate = %+v, %v; want %+v", p, err, want)
	}

	t.Run("wrong password and unknown user look the same", func(t *testing.T) {
		_, _, e1 := f.acc.Login(ctx, "li.wei", "wrong-password-x", "10.0.0.8")
		_, _, e2 := f.acc.Login(ctx, "nobody", "wrong-password-x", "10.0.0.8")
		if dispatch.ErrorCode(e1) != dispatch.CodeUnauthorized || e1.Error() != e2.Error() {
			t.Fatalf("wrong password: %v; unknown user: %v; want the same unauthorized error", e1, e2)
		}
	})
	t.Run("bad tokens", func(t *testing.T) {
		for _, tok := range []string{"", "x", tok + "x", strings.Repeat("a", 1000)} {
			if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
				t.Errorf("Authenticate(%.10q) = %v, want unauthorized", tok, err)
			}
		}
	})
	t.Run("disabled user", func(t *testing.T) {
		if _, err := f.acc.CreateUser(ctx, admin, "gone", "dispatch-1234567", dispatch.RoleDispatcher, countyID); err != nil {
			t.Fatal(err)
		}
		tok, _, err := f.acc.Login(ctx, "gone", "dispatch-1234567", "10.0.0.9")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := f.users.User(ctx, "gone")
		u.Disabled = true
		_ = f.users.UpdateUser(ctx, u)
		if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
			t.Errorf("a disabled user's session: %v, want unauthorized", err)
		}
		if _, _, err := f.acc.Login(ctx, "gone", "dispatch-1234567", "10.0.0.9"); err == nil || err.Error() != "unauthorized: wrong username or password" {
			t.Errorf("a disabled user signed in: %v", err)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		f.clock.Add(12*time.Hour - time.Second)
		if _, err := f.acc.Authenticate(ctx, tok); err != nil {
			t.Fatalf("a second before expiry: %v", err)
		}
		f.clock.Add(time.Second)
		_, err := f.acc.Authenticate(ctx, tok)
		if dispatch.ErrorCode(err) != dispatch.CodeUnauthorized || !strings.Contains(err.Error(), "session expired") {
			t.Fatalf("at expiry: %v, want unauthorized session expired", err)
		}
	})
	t.Run("logout", func(t *testing.T) {
		tok, _, err := f.acc.Login(ctx, "li.wei", "dispatch-1234567", "10.0.0.7")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.acc.Logout(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
			t.Fatalf("after logout: %v", err)
		}
		if err := f.acc.Logout(ctx, tok); err != nil {
			t.Fatalf("second logout: %v", err)
		}
	})
}

func TestCreateUserRules(t *testing.T) {
	ctx := context.Background()
	f := newAccess(t, bcrypt.MinCost)
	admin := f.boot(t)
	const pw = "long enough pw"
	tests := []struct {
		name     string
		by       dispatch.Principal
		username string
		password string
		role     dispatch.Role
		jur      string
		want     string
	}{
		{"dispatcher of a county", admin, "d1", pw, dispatch.RoleDispatcher, countyID, ""},
		{"city user of the city", admin, "c1", pw, dispatch.RoleCity, cityID, ""},
		{"integrator of a county", admin, "i1", pw, dispatch.RoleIntegrator, countyID, ""},
		{"integrator of the city", admin, "i2", pw, dispatch.RoleIntegrator, cityID, ""},
		{"admin of the whole area", admin, "a1", pw, dispatch.RoleAdmin, "", ""},
		{"county admin", admin, "a2", pw, dispatch.RoleAdmin, countyID, ""},
		{"not by a dispatcher", dispA, "x1", pw, dispatch.RoleDispatcher, countyID, dispatch.CodeForbidden},
		{"not by a city user", cityP, "x2", pw, dispatch.RoleDispatcher, countyID, dispatch.CodeForbidden},
		{"county admin cannot make a whole-area admin", dispatch.Principal{Name: "a2", Role: dispatch.RoleAdmin, Jurisdiction: countyID}, "x3", pw, dispatch.RoleAdmin, "", dispatch.CodeForbidden},
		{"county admin cannot reach another county", dispatch.Principal{Name: "a2", Role: dispatch.RoleAdmin, Jurisdiction: countyID}, "x4", pw, dispatch.RoleDispatcher, neighbourID, dispatch.CodeForbidden},
		{"unknown role", admin, "x5", pw, "root", countyID, dispatch.CodeInvalid},
		{"dispatcher of a city", admin, "x6", pw, dispatch.RoleDispatcher, cityID, dispatch.CodeInvalid},
		{"city user of a county", admin, "x7", pw, dispatch.RoleCity, countyID, dispatch.CodeInvalid},
		{"dispatcher without jurisdiction", admin, "x8", pw, dispatch.RoleDispatcher, "", dispatch.CodeInvalid},
		{"integrator without jurisdiction", admin, "x9", pw, dispatch.RoleIntegrator, "", dispatch.CodeInvalid},
		{"unknown jurisdiction", admin, "x10", pw, dispatch.RoleDispatcher, "999999", dispatch.CodeInvalid},
		{"short password", admin, "x11", "short", dispatch.RoleDispatcher, countyID, dispatch.CodeInvalid},
		{"password over 72 bytes", admin, "x12", strings.Repeat("p", 73), dispatch.RoleDispatcher, countyID, dispatch.CodeInvalid},
		{"upper-case username", admin, "Admin2", pw, dispatch.RoleDispatcher, countyID, dispatch.CodeInvalid},
		{"empty username", admin, "", pw, dispatch.RoleDispatcher, countyID, dispatch.CodeInvalid},
		{"username taken", admin, "admin", pw, dispatch.RoleDispatcher, countyID, dispatch.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.users.ListUsers(ctx)
			u, err := f.acc.CreateUser(ctx, tt.by, tt.username, tt.password, tt.role, tt.jur)
			if got := codeOf(err); got != tt.want {
				t.Fatalf("err = %v, want code %q", err, tt.want)
			}
			after, _ := f.users.ListUsers(ctx)
			if err != nil {
				if len(after) != len(before) {
					t.Fatalf("a refused user was stored")
				}
				return
			}
			if u.Username != tt.username || u.Role != tt.role || u.Jurisdiction != tt.jur || len(after) != len(before)+1 {
				t.Fatalf("created %+v", u)
			}
		})
	}
}

func TestSetRole(t *testing.T) {
	ctx := context.Background()
	f := newAccess(t, bcrypt.MinCost)
	admin := f.boot(t)
	if _, err := f.acc.CreateUser(ctx, admin, "wang", "long enough pw", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	tok, _, _ := f.acc.Login(ctx, "wang", "long enough pw", "r")
	if _, err := f.acc.SetRole(ctx, dispA, "wang", dispatch.RoleCity, cityID); dispatch.ErrorCode(err) != dispatch.CodeForbidden {
		t.Fatalf("a dispatcher changed a role: %v", err)
	}
	if _, err := f.acc.SetRole(ctx, admin, "wang", dispatch.RoleCity, cityID); err != nil {
		t.Fatal(err)
	}
	// The session made under the old role ends; a new one has the new role.
	if _, err := f.acc.Authenticate(ctx, tok); dispatch.ErrorCode(err) != dispatch.CodeUnauthorized {
		t.Fatalf("a session made before the change: %v, want unauthorized", err)
	}
	tok, _, _ = f.acc.Login(ctx, "wang", "long enough pw", "r")
	if p, err := f.acc.Authenticate(ctx, tok); err != nil || p.Role != dispatch.RoleCity || p.Jurisdiction != cityID {
		t.Fatalf("signed in after the change: %+v, %v", p, err)
	}
	if _, err := f.acc.SetRole(ctx, admin, "admin", dispatch.RoleDispatcher, countyID); dispatch.ErrorCode(err) != dispatch.CodeConflict {
		t.Fatalf("the last administrator was demoted: %v", err)
	}
	if _, err := f.acc.SetRole(ctx, admin, "nobody", dispatch.RoleCity, cityID); !errors.Is(err, dispatch.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestUnitCredentials(t *testing.T) {
	ctx := context.Background()
	f := newAccess(t, bcrypt.MinCost)
	admin := f.boot(t)
	if _, err := f.acc.RotateUnitCredentials(ctx, cityP, "U01"); dispatch.ErrorCode(err) != dispatch.CodeForbidden {
		t.Fatalf("a city user rotated credentials: %v", err)
	}
	if _, err := f.acc.RotateUnitCredentials(ctx, admin, "NOPE"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Fatalf("unknown unit: %v", err)
	}
	if f.acc.AuthenticateUnit(ctx, "U01", "") || f.acc.AuthenticateUnit(ctx, "U01", "anything at all") {
		t.Fatal("a unit without credentials authenticated")
	}
	first, err := f.acc.RotateUnitCredentials(ctx, admin, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 43 {
		t.Errorf("password %q: want 43 characters (256 bits)", first)
	}
	c, _ := f.users.UnitCredential(ctx, "U01")
	if strings.Contains(c.PasswordHash, first) {
		t.Error("the unit password is stored in clear")
	}
	for range 3 { // the second and third come from the cache
		if !f.acc.AuthenticateUnit(ctx, "U01", first) {
			t.Fatal("the unit's password was refused")
		}
	}
	for _, tt := range []struct{ unit, pw string }{{"U01", first + "x"}, {"U01", strings.ToUpper(first)}, {"U02", first}} {
		if f.acc.AuthenticateUnit(ctx, tt.unit, tt.pw) {
			t.Errorf("AuthenticateUnit(%s, %s) = true", tt.unit, tt.pw)
		}
	}
	f.clock.Add(time.Second)
	second, err := f.acc.RotateUnitCredentials(ctx, admin, "U01")
	if err != nil || second == first {
		t.Fatalf("rotate: %q, %v", second, err)
	}
	if f.acc.AuthenticateUnit(ctx, "U01", first) {
		t.Fatal("the old password still works after rotation (cache not invalidated)")
	}
	if !f.acc.AuthenticateUnit(ctx, "U01", second) {
		t.Fatal("the new password is refused")
	}
}

// TestUnitCredentialsStored: a terminal's secret is stored only as a
// digest, checks cheaply (a reconnect storm must not queue behind a slow
// hash) and a rotation retires the old secret at once.
func TestUnitCredentialsStored(t *testing.T) {
	ctx := context.Background()
	f := newAccess(t, bcrypt.DefaultCost)
	admin := f.boot(t)
	pw, err := f.acc.RotateUnitCredentials(ctx, admin, "U02")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.users.UnitCredential(ctx, "U02")
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 40 || strings.Contains(c.PasswordHash, pw) {
		t.Fatalf("secret %d chars, stored %q: want a long secret stored only as a digest", len(pw), c.PasswordHash)
	}
	t0 := time.Now()
	for range 1000 {
		if !f.acc.AuthenticateUnit(ctx, "U02", pw) {
			t.Fatal("refused")
		}
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("1000 terminal logins took %s", d)
	}
	again, err := f.acc.RotateUnitCredentials(ctx, admin, "U02")
	if err != nil {
		t.Fatal(err)
	}
	if f.acc.AuthenticateUnit(ctx, "U02", pw) || !f.acc.AuthenticateUnit(ctx, "U02", again) {
		t.Fatal("after rotation the old secret must fail and the new one pass")
	}
}

// TestAuditChain checks that sign-ins, failures, user and role changes,
// unit credentials and assignments land in one verifiable log.
func TestAuditChain(t *testing.T) {
	ctx := context.Background()
	f := newAccess(t, bcrypt.MinCost)
	admin := f.boot(t)
	_, _, _ = f.acc.Login(ctx, "admin", "wrong-password-x", "192.0.2.1")
	if _, err := f.acc.CreateUser(ctx, admin, "zhang", "long enough pw", dispatch.RoleDispatcher, countyID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acc.SetRole(ctx, admin, "zhang", dispatch.RoleCity, cityID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acc.RotateUnitCredentials(ctx, admin, "U01"); err != nil {
		t.Fatal(err)
	}
	svc, err := dispatch.NewService(ctx, dispatch.Config{Area: f.area, Store: memory.NewStore(), Events: dispatch.NewBus(), Auditor: f.audit, Now: f.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	inc, _, _, err := svc.CreateIncident(ctx, admin, dispatch.NewIncident{Location: dispatch.LatLon{Lat: centre.Lat(), Lon: centre.Lon()}, Priority: 1, Category: dispatch.CatStroke})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Assign(ctx, admin, inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}

	log, err := f.audit.AuditLog(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Actor+" "+e.Action+" "+e.Subject)
	}
	want := []string{
		"system user_create admin",
		"admin login admin",
		"admin login_failed admin",
		"admin user_create zhang",
		"admin role_change zhang",
		"admin unit_credentials unit:U01",
		"admin incident_create " + inc.ID,
		"admin assign " + inc.ID,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log:\n%q\nwant\n%q", got, want)
	}
	var failed map[string]string
	_ = json.Unmarshal(log[2].Detail, &failed)
	if failed["remote"] != "192.0.2.1" {
		t.Errorf("failed login detail %s: want the remote address", log[2].Detail)
	}
	for _, e := range log {
		if strings.Contains(string(e.Detail), adminPassword) || strings.Contains(string(e.Detail), "wrong-password-x") {
			t.Fatalf("a password in the audit log: %s", e.Detail)
		}
	}
	if err := dispatch.VerifyAudit(log); err != nil {
		t.Fatalf("verify: %v", err)
	}
	log[4].Detail = json.RawMessage(`{"from":{"role":"dispatcher","jurisdiction":"510322"},"role":"admin","jurisdiction":""}`)
	if err := dispatch.VerifyAudit(log); err == nil || !strings.Contains(err.Error(), "entry 5") {
		t.Fatalf("an edited entry passed verification: %v", err)
	}
}

func TestResetPassword(t *testing.T) {
	ctx := context.Background()
	f := newAccess(t, bcrypt.MinCost)
	f.boot(t)
	dispatcher := dispatch.Principal{Name: "d", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}
	if _, err := f.acc.ResetPassword(ctx, dispatcher, dispatch.AdminUsername); dispatch.ErrorCode(err) != dispatch.CodeForbidden {
		t.Fatalf("a dispatcher reset the admin's password: %v", err)
	}
	pw, err := f.acc.ResetPassword(ctx, dispatch.System, dispatch.AdminUsername)
	if err != nil || len(pw) < 12 {
		t.Fatalf("reset: %q %v", pw, err)
	}
	if _, _, err := f.acc.Login(ctx, dispatch.AdminUsername, adminPassword, "t"); err == nil {
		t.Fatal("the old password still works")
	}
	if _, _, err := f.acc.Login(ctx, dispatch.AdminUsername, pw, "t"); err != nil {
		t.Fatalf("the new password does not work: %v", err)
	}
}

// TestSessionsEnd: a password reset, disabling (and re-enabling) and a
// role change end every session of the user, a sign-out its own; each
// tells the live feeds through the event bus, naming whose sessions ended.
func TestSessionsEnd(t *testing.T) {
	ctx := context.Background()
	bus := dispatch.NewBus()
	users, audit, clock := memory.NewUsers(), memory.NewAudit(), dispatchtest.NewClock(clock0)
	acc, err := dispatch.NewAccess(dispatch.AccessConfig{Users: users, Auditor: audit, Area: testArea(t, 2), Events: bus, Cost: bcrypt.MinCost, Now: clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Bootstrap(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	admin := dispatch.Principal{Name: "admin", Role: dispatch.RoleAdmin}
	const pw = "long enough pw"
	for _, name := range []string{"li", "wang"} {
		if _, err := acc.CreateUser(ctx, admin, name, pw, dispatch.RoleDispatcher, countyID); err != nil {
			t.Fatal(err)
		}
	}
	sub := bus.Subscribe(16)
	defer sub.Close()
	login := func(name, password string) string {
		t.Helper()
		tok, _, err := acc.Login(ctx, name, password, "10.0.0.1")
		if err != nil {
			t.Fatalf("sign in as %s: %v", name, err)
		}
		return tok
	}
	valid := func(tok string) bool {
		_, err := acc.Authenticate(ctx, tok)
		return err == nil
	}
	event := func() dispatch.SessionsEnded {
		t.Helper()
		select {
		case e := <-sub.C:
			if e.Type != dispatch.EventSessions || e.Sessions == nil || e.Jurisdiction != "" {
				t.Fatalf("event %+v, want an internal sessions event", e)
			}
			return *e.Sessions
		default:
			t.Fatal("no sessions event")
			return dispatch.SessionsEnded{}
		}
	}

	newPw := pw
	tests := []struct {
		name string
		end  func() error
		pw   func() string // the password to sign in with afterwards
	}{
		{"reset password", func() error {
			var err error
			newPw, err = acc.ResetPassword(ctx, dispatch.System, "li")
			return err
		}, func() string { return newPw }},
		{"disable", func() error { _, err := acc.SetDisabled(ctx, admin, "li", true); return err }, nil},
		{"enable again", func() error { _, err := acc.SetDisabled(ctx, admin, "li", false); return err }, func() string { return newPw }},
		{"change role", func() error { _, err := acc.SetRole(ctx, admin, "li", dispatch.RoleIntegrator, countyID); return err }, func() string { return newPw }},
	}
	li := []string{login("li", pw), login("li", pw)}
	other := login("wang", pw)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.end(); err != nil {
				t.Fatal(err)
			}
			for i, tok := range li {
				if valid(tok) {
					t.Fatalf("li's session %d still valid", i)
				}
			}
			if !valid(other) {
				t.Fatal("another user's session ended")
			}
			if got := event(); got != (dispatch.SessionsEnded{Username: "li"}) {
				t.Fatalf("event names %+v, want every session of li", got)
			}
			if tt.pw != nil {
				li = []string{login("li", tt.pw()), login("li", tt.pw())}
			} else {
				li = nil
			}
		})
	}
	t.Run("disabled user re-enabled: old tokens stay dead", func(t *testing.T) {
		tok := login("li", newPw)
		if _, err := acc.SetDisabled(ctx, admin, "li", true); err != nil {
			t.Fatal(err)
		}
		if _, err := acc.SetDisabled(ctx, admin, "li", false); err != nil {
			t.Fatal(err)
		}
		if valid(tok) {
			t.Fatal("a token from before the user was disabled came back to life")
		}
		event()
		event()
	})
	t.Run("sign out", func(t *testing.T) {
		a, b := login("li", newPw), login("li", newPw)
		if err := acc.Logout(ctx, a); err != nil {
			t.Fatal(err)
		}
		if valid(a) || !valid(b) {
			t.Fatalf("after signing out a: a valid %v, b valid %v; want only a ended", valid(a), valid(b))
		}
		if got := event(); got != (dispatch.SessionsEnded{Username: "li", TokenHash: dispatch.TokenHash(a)}) {
			t.Fatalf("event names %+v, want li's signed-out session", got)
		}
		ended := &dispatch.SessionsEnded{Username: "li", TokenHash: dispatch.TokenHash(a)}
		all := &dispatch.SessionsEnded{Username: "li"}
		if !ended.Ends("li", dispatch.TokenHash(a)) || ended.Ends("li", dispatch.TokenHash(b)) || !all.Ends("li", dispatch.TokenHash(b)) || all.Ends("wang", "x") {
			t.Fatal("Ends does not tell the ended sessions from the others")
		}
	})
	var log []string
	entries, _ := audit.AuditLog(ctx, 0, 0)
	for _, e := range entries {
		if e.Subject == "li" && e.Action != dispatch.AuditLogin && e.Action != dispatch.AuditUserCreate {
			log = append(log, e.Action+" "+string(e.Detail))
		}
	}
	want := []string{
		`password_reset {"sessions_ended":2}`,
		`user_disabled {"disabled":true,"sessions_ended":2}`,
		`user_disabled {"disabled":false,"sessions_ended":0}`,
		`role_change {"from":{"jurisdiction":"510322","role":"dispatcher"},"jurisdiction":"510322","role":"integrator","sessions_ended":2}`,
		`user_disabled {"disabled":true,"sessions_ended":3}`, // the two after the role change, and one more
		`user_disabled {"disabled":false,"sessions_ended":0}`,
		`logout `,
	}
	if !slices.Equal(log, want) {
		t.Fatalf("audit of li:\n%q\nwant\n%q", log, want)
	}
}
