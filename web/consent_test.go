package web_test

import (
	"maps"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// nextConsent reads the live feed until a consent message and returns its consent.
func nextConsent(tb testing.TB, c *websocket.Conn) dispatch.Consent {
	tb.Helper()
	for {
		if m := read(tb, c); m.Type == "consent" {
			return *m.Consent
		}
	}
}

// TestConsentOverHTTP: county A's dispatcher asks for B's unit (202 and
// a pending consent); both counties' consoles get consent messages; B's
// dispatcher finds it among what awaits it and accepts; A's timeline of
// the call shows it.
func TestConsentOverHTTP(t *testing.T) {
	e := newEnv(t)
	inc := e.incident(t, centreA)
	e.move(t, "N01", orb.Point{centreB[0] - 0.05, centreB[1]})
	dispA, dispB := bearer(e.tokens["disp-a"]), bearer(e.tokens["disp-b"])
	conA, conB := e.live(t, "", dispA), e.live(t, "", dispB)
	read(t, conA)
	read(t, conB)

	r := e.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", `{"unit":"N01"}`, dispA)
	var asked struct{ Consent dispatch.Consent }
	r.decode(t, &asked)
	c := asked.Consent
	if r.status != 202 || c.Status != dispatch.ConsentPending || c.From != countyB || c.To != countyA || c.Unit != "N01" || c.ExpiresAt.IsZero() ||
		r.header.Get("Location") != "/api/v1/consents/"+c.ID {
		t.Fatalf("ask: %d %s", r.status, r.body)
	}
	for name, con := range map[string]*websocket.Conn{"A": conA, "B": conB} {
		if got := nextConsent(t, con); got.ID != c.ID || got.Status != dispatch.ConsentPending {
			t.Fatalf("console %s: consent %+v", name, got)
		}
	}
	for _, who := range []string{"disp-a", "disp-b", "city"} {
		var list struct{ Consents []dispatch.Consent }
		r := e.do(t, "GET", "/api/v1/consents?status=pending", "", bearer(e.tokens[who]))
		r.decode(t, &list)
		if r.status != 200 || len(list.Consents) != 1 || list.Consents[0].ID != c.ID {
			t.Fatalf("%s: pending %d %s", who, r.status, r.body)
		}
	}
	bad := []struct {
		name, method, path, body string
		as                       auth
		status                   int
	}{
		{"requester answers", "POST", "/api/v1/consents/" + c.ID, `{"decision":"accept"}`, dispA, 403},
		{"integrator answers", "POST", "/api/v1/consents/" + c.ID, `{"decision":"accept"}`, bearer(e.tokens["integ"]), 403},
		{"unknown decision", "POST", "/api/v1/consents/" + c.ID, `{"decision":"maybe"}`, dispB, 400},
		{"no decision", "POST", "/api/v1/consents/" + c.ID, `{"reason":"x"}`, dispB, 400},
		{"misspelt field", "POST", "/api/v1/consents/" + c.ID, `{"decison":"accept"}`, dispB, 400},
		{"reason with a control character", "POST", "/api/v1/consents/" + c.ID, `{"decision":"decline","reason":"a\u0000b"}`, dispB, 400},
		{"unknown consent", "POST", "/api/v1/consents/CNS-404", `{"decision":"accept"}`, dispB, 404},
		{"unknown status", "GET", "/api/v1/consents?status=maybe", "", dispB, 400},
		{"bad limit", "GET", "/api/v1/consents?limit=-1", "", dispB, 400},
		{"signed out", "GET", "/api/v1/consents", "", noAuth, 401},
		{"policy of another county", "PATCH", "/api/v1/jurisdictions/" + countyB, `{"consent":"auto"}`, dispA, 403},
		{"unknown policy", "PATCH", "/api/v1/jurisdictions/" + countyB, `{"consent":"always"}`, dispB, 400},
		{"no policy", "PATCH", "/api/v1/jurisdictions/" + countyB, `{}`, dispB, 400},
		{"unknown jurisdiction", "PATCH", "/api/v1/jurisdictions/999999", `{"consent":"auto"}`, bearer(e.tokens["admin"]), 404},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(t, tt.method, tt.path, tt.body, tt.as); r.status != tt.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tt.status)
			}
		})
	}

	r = e.do(t, "POST", "/api/v1/consents/"+c.ID, `{"decision":"accept","reason":"go"}`, dispB)
	var answered struct {
		Consent    dispatch.Consent
		Assignment dispatch.Assignment
	}
	r.decode(t, &answered)
	if r.status != 200 || answered.Consent.Status != dispatch.ConsentAccepted || answered.Assignment.Unit != "N01" || answered.Consent.Assignment != answered.Assignment.ID {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	for name, con := range map[string]*websocket.Conn{"A": conA, "B": conB} {
		if got := nextConsent(t, con); got.ID != c.ID || got.Status != dispatch.ConsentAccepted {
			t.Fatalf("console %s: consent %+v", name, got)
		}
	}
	if r := e.do(t, "POST", "/api/v1/consents/"+c.ID, `{"decision":"decline"}`, dispB); r.status != 409 {
		t.Fatalf("a second answer: %d %s", r.status, r.body)
	}
	// The call's timeline, as A sees it: the borrowed unit's assignment
	// and the consent (B's unit's track is B's to show).
	r = e.do(t, "GET", "/api/v1/incidents/"+inc.ID, "", dispA)
	var view struct {
		Assignments []dispatch.Assignment
		Consents    []dispatch.Consent
	}
	r.decode(t, &view)
	if r.status != 200 || len(view.Assignments) != 1 || len(view.Consents) != 1 || view.Consents[0].Status != dispatch.ConsentAccepted {
		t.Fatalf("incident: %d %s", r.status, pretty(r.body))
	}

	r = e.do(t, "PATCH", "/api/v1/jurisdictions/"+countyB, `{"consent":"auto"}`, dispB)
	var j dispatch.JurisdictionPolicy
	r.decode(t, &j)
	if r.status != 200 || j.ID != countyB || j.Consent != dispatch.ConsentAuto || j.Source != "record" || j.SetBy != "disp-b" {
		t.Fatalf("set policy: %d %s", r.status, r.body)
	}
	var all struct{ Jurisdictions []dispatch.JurisdictionPolicy }
	e.do(t, "GET", "/api/v1/jurisdictions", "", dispA).decode(t, &all)
	got := map[string]string{}
	for _, j := range all.Jurisdictions {
		got[j.ID] = string(j.Consent)
	}
	if want := map[string]string{cityID: "ask", countyA: "ask", countyB: "auto"}; !maps.Equal(got, want) {
		t.Fatalf("jurisdictions %v, want %v", got, want)
	}
}
