package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// The linked area of the consent scenario: a city with counties A and B
// side by side (the line at longitude 105.2) and C west of A. A's calls
// come from its east edge; its only free unit A1 waits at its west edge,
// 32 km away, outside even the widened rural radius; B's units B1 and B2
// are 10 km away, over the line. C has no unit.
const (
	linkCity = "510300"
	linkA    = "510322"
	linkB    = "510302"
	linkC    = "510303"
)

var (
	linkCall = orb.Point{105.15, 29.2}
	linkA1   = orb.Point{104.82, 29.2}
	linkB1   = orb.Point{105.25, 29.2}
	linkB2   = orb.Point{105.26, 29.21}
)

// linkedAreaFile writes the linked area as an area file and returns its path.
func linkedAreaFile(t *testing.T) string {
	t.Helper()
	county := func(id string, c orb.Point, half float64) dispatch.Jurisdiction {
		return dispatch.Jurisdiction{ID: id, Name: "county " + id, Parent: linkCity, Region: dispatchtest.Region(t, id, dispatchtest.Square(c, half))}
	}
	a := &dispatch.Area{
		Name: "linked counties",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: linkCity, Name: "city"},
			county(linkA, orb.Point{105.0, 29.2}, 0.2), county(linkB, orb.Point{105.3, 29.2}, 0.1), county(linkC, orb.Point{104.6, 29.2}, 0.2),
		},
		Stations: []dispatch.Station{
			{ID: "ST-A", Name: "A west", Jurisdiction: linkA, Kind: "township", Location: linkA1},
			{ID: "ST-B", Name: "B", Jurisdiction: linkB, Kind: "county_hospital", Location: linkB1},
		},
		Units: []dispatch.Unit{
			{ID: "A1", Callsign: "A1", Station: "ST-A", Jurisdiction: linkA, Capabilities: []string{dispatch.BLS}},
			{ID: "B1", Callsign: "B1", Station: "ST-B", Jurisdiction: linkB, Capabilities: []string{dispatch.ALS}},
			{ID: "B2", Callsign: "B2", Station: "ST-B", Jurisdiction: linkB, Capabilities: []string{dispatch.ALS}},
		},
	}
	b, err := geojson.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "linked.geojson")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// consents returns the consent messages the console has seen.
func (c *console) consents() []dispatch.Consent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []dispatch.Consent
	for _, m := range c.msgs {
		var typ string
		_ = json.Unmarshal(m["type"], &typ)
		if typ == "consent" {
			var cn dispatch.Consent
			_ = json.Unmarshal(m["consent"], &cn)
			out = append(out, cn)
		}
	}
	return out
}

// sawConsent reports whether the console has seen consent id in status.
func (c *console) sawConsent(id string, status dispatch.ConsentStatus) bool {
	return slices.ContainsFunc(c.consents(), func(cn dispatch.Consent) bool { return cn.ID == id && cn.Status == status })
}

// alertFor returns the console's alert of kind for consent id.
func (c *console) alertFor(kind dispatch.AlertKind, id string) (dispatch.Alert, bool) {
	for _, a := range c.alerts() {
		if a.Kind == kind && a.Consent == id {
			return a, true
		}
	}
	return dispatch.Alert{}, false
}

// TestConsentOverTheServer is the scenario "only a neighbouring county has
// a unit", through the real server on each store, as the dispatchers of
// both counties, a city user and the terminals would live it: a request
// accepted sends the unit (its terminal gets assign); one declined, and
// one nobody answers, offer county A the next candidate; a city user
// borrows without consent and county B is told. Both counties' consoles
// get every consent message, and the call's timeline and the audit log
// keep every step.
func TestConsentOverTheServer(t *testing.T) {
	area := linkedAreaFile(t)
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			mutate := st.mutate(t)
			m := startMain(t, func(c *Config) {
				if mutate != nil {
					mutate(c)
				}
				c.Area, c.ConsentTimeout = area, 3*time.Second
			})
			tokens := map[string]string{}
			for _, u := range []struct {
				name string
				role dispatch.Role
				jur  string
			}{{"disp-a", dispatch.RoleDispatcher, linkA}, {"disp-b", dispatch.RoleDispatcher, linkB}, {"city", dispatch.RoleCity, linkCity}} {
				if code := m.do(t, "POST", "/api/v1/users", map[string]string{"username": u.name, "password": "dispatch-1234567", "role": string(u.role), "jurisdiction": u.jur}, nil); code != http.StatusCreated {
					t.Fatalf("create %s: %d", u.name, code)
				}
				tokens[u.name] = m.login(t, u.name, "dispatch-1234567")
			}
			as := func(user, method, path string, body, out any) int {
				t.Helper()
				return doJSON(t, tokens[user], method, m.url(path), body, out)
			}
			conA, conB := dialConsoleAs(t, m, tokens["disp-a"]), dialConsoleAs(t, m, tokens["disp-b"])
			waitFor(t, 5*time.Second, "snapshots", func() bool { return conA.first() == "snapshot" && conB.first() == "snapshot" })
			tA1, tB1, tB2 := newTerminal(t, m, "A1"), newTerminal(t, m, "B1"), newTerminal(t, m, "B2")
			tA1.fix(t, linkA1)
			tB1.fix(t, linkB1)
			tB2.fix(t, linkB2)
			waitFor(t, 5*time.Second, "the fixes", func() bool { return conA.unitAt("A1", linkA1) && conB.unitAt("B2", linkB2) })

			call := func() dispatch.Incident {
				t.Helper()
				var inc dispatch.Incident
				if code := as("disp-a", "POST", "/api/v1/incidents", map[string]any{
					"location": map[string]float64{"lat": linkCall.Lat(), "lon": linkCall.Lon()}, "priority": 1, "category": "stroke", "address": "east edge",
				}, &inc); code != http.StatusCreated || inc.Jurisdiction != linkA {
					t.Fatalf("create a call in A: %d %+v", code, inc)
				}
				return inc
			}
			ask := func(inc dispatch.Incident, unit string) dispatch.Consent {
				t.Helper()
				var out struct{ Consent dispatch.Consent }
				if code := as("disp-a", "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": unit}, &out); code != http.StatusAccepted ||
					out.Consent.Status != dispatch.ConsentPending || out.Consent.From != linkB || out.Consent.To != linkA || out.Consent.Unit != unit {
					t.Fatalf("ask for %s: %d %+v", unit, code, out.Consent)
				}
				id := out.Consent.ID
				waitFor(t, 5*time.Second, "the request on both consoles", func() bool {
					return conA.sawConsent(id, dispatch.ConsentPending) && conB.sawConsent(id, dispatch.ConsentPending)
				})
				return out.Consent
			}

			// Accepted: the unit is sent.
			inc1 := call()
			c1 := ask(inc1, "B1")
			var pending struct{ Consents []dispatch.Consent }
			if code := as("disp-b", "GET", "/api/v1/consents?status=pending", nil, &pending); code != http.StatusOK || len(pending.Consents) != 1 || pending.Consents[0].ID != c1.ID {
				t.Fatalf("what awaits B: %d %+v", code, pending)
			}
			var accepted struct {
				Consent    dispatch.Consent
				Assignment dispatch.Assignment
			}
			if code := as("disp-b", "POST", "/api/v1/consents/"+c1.ID, map[string]string{"decision": "accept"}, &accepted); code != http.StatusOK ||
				accepted.Consent.Status != dispatch.ConsentAccepted || accepted.Assignment.Unit != "B1" {
				t.Fatalf("accept: %d %+v", code, accepted)
			}
			if cmd := tB1.command(t, telemetry.CommandAssign); cmd.Assignment != accepted.Assignment.ID {
				t.Fatalf("B1 got %+v, want assign %s", cmd, accepted.Assignment.ID)
			}
			waitFor(t, 5*time.Second, "the acceptance on both consoles", func() bool {
				return conA.sawConsent(c1.ID, dispatch.ConsentAccepted) && conB.sawConsent(c1.ID, dispatch.ConsentAccepted)
			})

			// Declined: A is told and offered the next candidate.
			inc2 := call()
			c2 := ask(inc2, "B2")
			if code := as("disp-b", "POST", "/api/v1/consents/"+c2.ID, map[string]string{"decision": "decline", "reason": "B2 covers the county seat"}, nil); code != http.StatusOK {
				t.Fatalf("decline: %d", code)
			}
			waitFor(t, 5*time.Second, "the decline on both consoles and A's alert", func() bool {
				_, ok := conA.alertFor(dispatch.AlertConsentDeclined, c2.ID)
				return ok && conA.sawConsent(c2.ID, dispatch.ConsentDeclined) && conB.sawConsent(c2.ID, dispatch.ConsentDeclined)
			})
			if al, _ := conA.alertFor(dispatch.AlertConsentDeclined, c2.ID); al.Incident != inc2.ID || al.Next == nil || al.Next.Unit != "A1" {
				t.Fatalf("alert %+v, want A1 offered next", al)
			}

			// Expired: nobody answers; A is told and offered the next candidate.
			c3 := ask(inc2, "B2")
			waitFor(t, 10*time.Second, "the expiry on both consoles and A's alert", func() bool {
				_, ok := conA.alertFor(dispatch.AlertConsentExpired, c3.ID)
				return ok && conA.sawConsent(c3.ID, dispatch.ConsentExpired) && conB.sawConsent(c3.ID, dispatch.ConsentExpired)
			})
			if al, _ := conA.alertFor(dispatch.AlertConsentExpired, c3.ID); al.Next == nil || al.Next.Unit != "A1" {
				t.Fatalf("alert %+v, want A1 offered next", al)
			}
			if code := as("disp-b", "POST", "/api/v1/consents/"+c3.ID, map[string]string{"decision": "accept"}, nil); code != http.StatusConflict {
				t.Fatalf("accept after the expiry: %d, want 409", code)
			}

			// A city user borrows without consent; B is notified.
			var borrowed struct {
				dispatch.Assignment
				Consent dispatch.Consent
			}
			if code := as("city", "POST", "/api/v1/incidents/"+inc2.ID+"/assignments", map[string]string{"unit": "B2"}, &borrowed); code != http.StatusCreated ||
				borrowed.Unit != "B2" || borrowed.Consent.Status != dispatch.ConsentNotified {
				t.Fatalf("city borrows: %d %+v", code, borrowed)
			}
			if cmd := tB2.command(t, telemetry.CommandAssign); cmd.Assignment != borrowed.ID {
				t.Fatalf("B2 got %+v, want assign %s", cmd, borrowed.ID)
			}
			waitFor(t, 5*time.Second, "B told of the borrow", func() bool { return conB.sawConsent(borrowed.Consent.ID, dispatch.ConsentNotified) })

			// The call's timeline and the audit log keep every step.
			var view struct{ Consents []dispatch.Consent }
			as("disp-a", "GET", "/api/v1/incidents/"+inc2.ID, nil, &view)
			var steps []dispatch.ConsentStatus
			for _, c := range view.Consents {
				steps = append(steps, c.Status)
			}
			if want := []dispatch.ConsentStatus{dispatch.ConsentDeclined, dispatch.ConsentExpired, dispatch.ConsentNotified}; !slices.Equal(steps, want) {
				t.Fatalf("the call's consents %v, want %v", steps, want)
			}
			var audit struct{ Entries []dispatch.AuditEntry }
			m.do(t, "GET", "/api/v1/audit", nil, &audit)
			var got []string
			for _, e := range audit.Entries {
				if e.Action == dispatch.AuditConsent {
					var d struct{ Step string }
					_ = json.Unmarshal(e.Detail, &d)
					got = append(got, e.Actor+":"+d.Step)
				}
			}
			want := []string{"disp-a:requested", "disp-b:accepted", "disp-a:requested", "disp-b:declined", "disp-a:requested", "system:expired", "city:notified"}
			if !slices.Equal(got, want) {
				t.Fatalf("audit %q, want %q", got, want)
			}
		})
	}
}
