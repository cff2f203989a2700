package web_test

import (
	"net/http"
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// TestUserAdministration: an administrator changes a dispatcher's county,
// disables a dispatcher who has left (their session stops at once) and
// reads the audit log that recorded both; nobody else may.
func TestUserAdministration(t *testing.T) {
	e := newEnv(t)
	admin := bearer(e.tokens["admin"])

	t.Run("refused", func(t *testing.T) {
		before := e.record(t)
		tests := []struct {
			name, path, body string
			a                auth
			want             int
		}{
			{"a dispatcher", "/api/v1/users/disp-b", `{"disabled":true}`, bearer(e.tokens["disp-a"]), http.StatusForbidden},
			{"a city user", "/api/v1/users/disp-b", `{"role":"admin","jurisdiction":""}`, bearer(e.tokens["city"]), http.StatusForbidden},
			{"no token", "/api/v1/users/disp-b", `{"disabled":true}`, noAuth, http.StatusUnauthorized},
			{"role without jurisdiction", "/api/v1/users/disp-b", `{"role":"city"}`, admin, http.StatusBadRequest},
			{"nothing to change", "/api/v1/users/disp-b", `{}`, admin, http.StatusBadRequest},
			{"unknown field", "/api/v1/users/disp-b", `{"disabeld":true}`, admin, http.StatusBadRequest},
			{"unknown user", "/api/v1/users/nobody", `{"disabled":true}`, admin, http.StatusNotFound},
			{"the last whole-area admin", "/api/v1/users/admin", `{"disabled":true}`, admin, http.StatusConflict},
			{"a county as a city", "/api/v1/users/city", `{"role":"city","jurisdiction":"` + countyA + `"}`, admin, http.StatusBadRequest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if r := e.do(t, "PATCH", tt.path, tt.body, tt.a); r.status != tt.want {
					t.Fatalf("got %d %s, want %d", r.status, r.body, tt.want)
				}
			})
		}
		if got := e.record(t); got != before {
			t.Fatalf("refused requests changed the record: %+v -> %+v", before, got)
		}
		var me struct{ Jurisdiction string }
		e.do(t, "GET", "/api/v1/me", "", bearer(e.tokens["disp-b"])).decode(t, &me)
		if me.Jurisdiction != countyB {
			t.Fatalf("disp-b moved to %s by a refused request", me.Jurisdiction)
		}
	})

	t.Run("move a dispatcher", func(t *testing.T) {
		if r := e.do(t, "PATCH", "/api/v1/users/disp-b", `{"role":"dispatcher","jurisdiction":"`+countyA+`"}`, admin); r.status != http.StatusOK {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		// The change ends disp-b's sessions; signed in again, it works county A.
		if r := e.do(t, "GET", "/api/v1/me", "", bearer(e.tokens["disp-b"])); r.status != http.StatusUnauthorized {
			t.Fatalf("a session from before the move: %d %s, want 401", r.status, r.body)
		}
		e.tokens["disp-b"] = e.login(t, "disp-b", userPass)
		var me struct{ Jurisdiction string }
		e.do(t, "GET", "/api/v1/me", "", bearer(e.tokens["disp-b"])).decode(t, &me)
		if me.Jurisdiction != countyA {
			t.Fatalf("disp-b works %s, want %s", me.Jurisdiction, countyA)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		tok := bearer(e.tokens["disp-a"])
		if r := e.do(t, "PATCH", "/api/v1/users/disp-a", `{"disabled":true}`, admin); r.status != http.StatusOK {
			t.Fatalf("disable: %d %s", r.status, r.body)
		}
		if r := e.do(t, "GET", "/api/v1/units", "", tok); r.status != http.StatusUnauthorized {
			t.Fatalf("a disabled user's session still works: %d", r.status)
		}
		if r := e.do(t, "POST", "/api/v1/sessions", `{"username":"disp-a","password":"`+userPass+`"}`, noAuth); r.status != http.StatusUnauthorized {
			t.Fatalf("a disabled user signed in: %d", r.status)
		}
		if r := e.do(t, "PATCH", "/api/v1/users/disp-a", `{"disabled":false}`, admin); r.status != http.StatusOK {
			t.Fatalf("enable: %d %s", r.status, r.body)
		}
		if r := e.do(t, "POST", "/api/v1/sessions", `{"username":"disp-a","password":"`+userPass+`"}`, noAuth); r.status != http.StatusCreated {
			t.Fatalf("an enabled user cannot sign in: %d", r.status)
		}
		if r := e.do(t, "GET", "/api/v1/units", "", tok); r.status != http.StatusUnauthorized {
			t.Fatalf("a session from before the user was disabled came back to life: %d", r.status)
		}
	})

	t.Run("audit log", func(t *testing.T) {
		if r := e.do(t, "GET", "/api/v1/audit", "", bearer(e.tokens["disp-a"])); r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
			t.Fatalf("a dispatcher read the audit log: %d", r.status)
		}
		var log struct{ Entries []dispatch.AuditEntry }
		if r := e.do(t, "GET", "/api/v1/audit", "", admin); r.status != http.StatusOK {
			t.Fatalf("audit log: %d %s", r.status, r.body)
		} else {
			r.decode(t, &log)
		}
		if err := dispatch.VerifyAudit(log.Entries); err != nil {
			t.Fatalf("the log served does not verify: %v", err)
		}
		seen := map[string]int{}
		for _, en := range log.Entries {
			seen[en.Action]++
		}
		if seen[dispatch.AuditRoleChange] != 1 || seen[dispatch.AuditUserDisabled] != 2 {
			t.Fatalf("audit actions %v: want one role change and two disable/enable entries", seen)
		}
		var page struct{ Entries []dispatch.AuditEntry }
		e.do(t, "GET", "/api/v1/audit?after=2&limit=3", "", admin).decode(t, &page)
		if len(page.Entries) != 3 || page.Entries[0].Seq != 3 {
			t.Fatalf("page after 2, limit 3: %d entries from %d", len(page.Entries), page.Entries[0].Seq)
		}
	})
}
