package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

func user(name string, role dispatch.Role, jur string) *dispatch.User {
	return &dispatch.User{
		Username: name, Role: role, Jurisdiction: jur,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA",
		CreatedAt:    at(0), UpdatedAt: at(0),
	}
}

func testUsers(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("Users", func(t *testing.T) {
		u := open(t).Users
		ctx := t.Context()
		li := user("li", dispatch.RoleDispatcher, "510322")
		for _, x := range []*dispatch.User{li, user("admin", dispatch.RoleAdmin, ""), user("城市", dispatch.RoleCity, "510300")} {
			must(t, u.CreateUser(ctx, x))
		}
		got, err := u.User(ctx, "li")
		must(t, err)
		same(t, got, li)

		dup := user("li", dispatch.RoleAdmin, "")
		wantCode(t, u.CreateUser(ctx, dup), dispatch.CodeConflict)
		got, err = u.User(ctx, "li")
		must(t, err)
		same(t, got, li) // the duplicate changed nothing

		li.Role, li.Disabled, li.PasswordHash, li.UpdatedAt = dispatch.RoleIntegrator, true, "new-hash", at(time.Hour)
		must(t, u.UpdateUser(ctx, li))
		got, err = u.User(ctx, "li")
		must(t, err)
		same(t, got, li)

		all, err := u.ListUsers(ctx)
		must(t, err)
		var names []string
		for _, x := range all {
			names = append(names, x.Username)
		}
		same(t, names, []string{"admin", "li", "城市"}) // by username, bytewise
		same(t, all[1], li)
	})

	t.Run("UsernameRace", func(t *testing.T) {
		u := open(t).Users
		ctx := t.Context()
		const n = 16
		var (
			wg   sync.WaitGroup
			errs [n]error
		)
		for i := range n {
			wg.Go(func() { errs[i] = u.CreateUser(ctx, user("same", dispatch.RoleDispatcher, fmt.Sprint(i))) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantCode(t, err, dispatch.CodeConflict)
		}
		if ok != 1 {
			t.Fatalf("%d callers created the user, want 1", ok)
		}
	})

	t.Run("UnitCredentials", func(t *testing.T) {
		u := open(t).Users
		ctx := t.Context()
		c := dispatch.UnitCredential{Unit: "FS-01", PasswordHash: "h1", RotatedAt: at(0)}
		must(t, u.SetUnitCredential(ctx, c))
		got, err := u.UnitCredential(ctx, "FS-01")
		must(t, err)
		same(t, got, &c)
		rotated := dispatch.UnitCredential{Unit: "FS-01", PasswordHash: "h2", RotatedAt: at(time.Hour)}
		must(t, u.SetUnitCredential(ctx, rotated))
		got, err = u.UnitCredential(ctx, "FS-01")
		must(t, err)
		same(t, got, &rotated)
		_, err = u.UnitCredential(ctx, "FS-02")
		wantCode(t, err, dispatch.CodeNotFound)
	})

	t.Run("Sessions", func(t *testing.T) {
		u := open(t).Users
		ctx := t.Context()
		must(t, u.CreateUser(ctx, user("li", dispatch.RoleDispatcher, "510322")))
		live := dispatch.Session{TokenHash: "hash-live", Username: "li", CreatedAt: at(0), ExpiresAt: at(12 * time.Hour)}
		// Expiry is the caller's to check: an expired session comes back as stored.
		expired := dispatch.Session{TokenHash: "hash-expired", Username: "li", CreatedAt: at(-48 * time.Hour), ExpiresAt: at(-36 * time.Hour)}
		for _, s := range []dispatch.Session{live, expired} {
			must(t, u.CreateSession(ctx, s))
		}
		for _, want := range []dispatch.Session{live, expired} {
			got, err := u.Session(ctx, want.TokenHash)
			must(t, err)
			same(t, got, &want)
		}
		wantCode(t, u.CreateSession(ctx, live), dispatch.CodeConflict)
		must(t, u.DeleteSession(ctx, "hash-live"))
		_, err := u.Session(ctx, "hash-live")
		wantCode(t, err, dispatch.CodeNotFound)
		wantCode(t, u.DeleteSession(ctx, "hash-live"), dispatch.CodeNotFound)
		got, err := u.Session(ctx, "hash-expired")
		must(t, err)
		same(t, got, &expired)

		// The sweep removes what expired before its time, and only that.
		must(t, u.CreateSession(ctx, live))
		n, err := u.DeleteExpiredSessions(ctx, at(0))
		must(t, err)
		if n != 1 {
			t.Fatalf("DeleteExpiredSessions removed %d sessions, want 1", n)
		}
		_, err = u.Session(ctx, "hash-expired")
		wantCode(t, err, dispatch.CodeNotFound)
		_, err = u.Session(ctx, "hash-live")
		must(t, err)
	})

	t.Run("DeleteSessions", func(t *testing.T) {
		u := open(t).Users
		ctx := t.Context()
		for _, name := range []string{"li", "wang", "li2"} {
			must(t, u.CreateUser(ctx, user(name, dispatch.RoleDispatcher, "510322")))
		}
		sessions := []dispatch.Session{
			{TokenHash: "li-1", Username: "li", CreatedAt: at(0), ExpiresAt: at(12 * time.Hour)},
			{TokenHash: "li-2", Username: "li", CreatedAt: at(time.Hour), ExpiresAt: at(13 * time.Hour)},
			{TokenHash: "li-old", Username: "li", CreatedAt: at(-48 * time.Hour), ExpiresAt: at(-36 * time.Hour)},
			{TokenHash: "wang-1", Username: "wang", CreatedAt: at(0), ExpiresAt: at(12 * time.Hour)},
			{TokenHash: "li2-1", Username: "li2", CreatedAt: at(0), ExpiresAt: at(12 * time.Hour)}, // a name li is a prefix of
		}
		for _, s := range sessions {
			must(t, u.CreateSession(ctx, s))
		}
		n, err := u.DeleteSessions(ctx, "li")
		must(t, err)
		if n != 3 {
			t.Fatalf("DeleteSessions(li) removed %d sessions, want 3", n)
		}
		for _, s := range sessions {
			_, err := u.Session(ctx, s.TokenHash)
			if s.Username == "li" {
				wantCode(t, err, dispatch.CodeNotFound)
			} else {
				must(t, err)
			}
		}
		for _, name := range []string{"li", "nobody"} {
			n, err := u.DeleteSessions(ctx, name)
			must(t, err)
			if n != 0 {
				t.Fatalf("DeleteSessions(%s) again removed %d, want 0", name, n)
			}
		}
	})
}

func testAudit(t *testing.T, open func(t *testing.T) Stores) {
	entry := func(i int) dispatch.AuditEntry {
		return dispatch.AuditEntry{
			At: at(time.Duration(i) * time.Second), Actor: "li", Action: dispatch.AuditAssign,
			Subject: fmt.Sprintf("INC-%d", i), Detail: json.RawMessage(fmt.Sprintf(`{"unit":"U%d","z":1,"a":[1,2]}`, i)),
		}
	}

	t.Run("Chain", func(t *testing.T) {
		a := open(t).Audit
		ctx := t.Context()
		log, err := a.AuditLog(ctx, 0, 0)
		must(t, err)
		if len(log) != 0 {
			t.Fatalf("new log has %d entries", len(log))
		}
		var sealed []dispatch.AuditEntry
		for i := range 3 {
			e := entry(i)
			if i == 1 {
				e.Detail = nil
			}
			if i == 2 {
				e.At = time.Date(2026, 11, 23, 16, 0, 0, 123456789, time.FixedZone("CST", 8*3600)) // ns and a zone: sealed as UTC µs
			}
			e.Seq, e.Prev, e.Hash = 99, "forged", "forged" // the store's to set
			got, err := a.AppendAudit(ctx, e)
			must(t, err)
			if got.Seq != int64(i+1) {
				t.Fatalf("entry %d: seq %d", i, got.Seq)
			}
			if !got.At.Equal(e.At.Truncate(time.Microsecond)) || got.At.Location() != time.UTC {
				t.Fatalf("entry %d: at %v, want %v in UTC", i, got.At, e.At.Truncate(time.Microsecond))
			}
			if got.Hash != got.ChainHash(got.Prev) {
				t.Fatalf("entry %d: hash does not cover the entry", i)
			}
			sealed = append(sealed, got)
		}
		if sealed[0].Prev != dispatch.GenesisHash || sealed[1].Prev != sealed[0].Hash {
			t.Fatal("the chain does not start at genesis, or is not linked")
		}
		log, err = a.AuditLog(ctx, 0, 0)
		must(t, err)
		same(t, log, sealed)
		must(t, dispatch.VerifyAudit(log))
		if string(log[0].Detail) != `{"unit":"U0","z":1,"a":[1,2]}` {
			t.Fatalf("detail came back as %s, want it as appended", log[0].Detail)
		}

		_, err = a.AppendAudit(ctx, dispatch.AuditEntry{At: at(0), Actor: "li", Action: "x", Detail: json.RawMessage(`{not json`)})
		wantCode(t, err, dispatch.CodeInvalid)
		log, err = a.AuditLog(ctx, 0, 0)
		must(t, err)
		if len(log) != 3 {
			t.Fatalf("a rejected entry was stored: %d entries", len(log))
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		a := open(t).Audit
		ctx := t.Context()
		const n = 50
		var (
			wg   sync.WaitGroup
			errs [n]error
		)
		for i := range n {
			wg.Go(func() { _, errs[i] = a.AppendAudit(ctx, entry(i)) })
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err)
		}
		log, err := a.AuditLog(ctx, 0, 0)
		must(t, err)
		if len(log) != n {
			t.Fatalf("%d entries, want %d", len(log), n)
		}
		must(t, dispatch.VerifyAudit(log))
		subjects := map[string]bool{}
		for _, e := range log {
			subjects[e.Subject] = true
		}
		if len(subjects) != n {
			t.Fatalf("%d distinct entries, want %d", len(subjects), n)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		a := open(t).Audit
		ctx := t.Context()
		for i := range 20 {
			_, err := a.AppendAudit(ctx, entry(i))
			must(t, err)
		}
		tests := []struct {
			name         string
			after        int64
			limit        int
			first, count int64
		}{
			{"all", 0, 0, 1, 20},
			{"first page", 0, 5, 1, 5},
			{"after 10", 10, 5, 11, 5},
			{"last partial page", 17, 5, 18, 3},
			{"after the end", 20, 5, 0, 0},
			{"after, no limit", 15, 0, 16, 5},
			{"negative after", -3, 2, 1, 2},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := a.AuditLog(ctx, tt.after, tt.limit)
				must(t, err)
				if int64(len(got)) != tt.count {
					t.Fatalf("%d entries, want %d", len(got), tt.count)
				}
				for i, e := range got {
					if e.Seq != tt.first+int64(i) {
						t.Fatalf("entry %d has seq %d, want %d", i, e.Seq, tt.first+int64(i))
					}
				}
			})
		}
	})
}
