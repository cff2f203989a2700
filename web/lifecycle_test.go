package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// TestDiversionOverHTTP: PATCH /api/v1/hospitals/{id} puts a hospital on
// diversion, GET /api/v1/hospitals shows it, and the destination advice
// of a call skips it; wrong inputs and wrong people change nothing.
func TestDiversionOverHTTP(t *testing.T) {
	e := newEnv(t)
	inc, _, _, err := e.svc.CreateIncident(context.Background(), dispatch.System, dispatch.NewIncident{
		Location: dispatch.LatLon{Lat: centreA.Lat(), Lon: centreA.Lon()}, Priority: 1, Category: dispatch.CatStroke,
	})
	if err != nil {
		t.Fatal(err)
	}
	until := e.clock.Now().Add(time.Hour).Format(time.RFC3339)
	refused := []struct {
		name   string
		body   string
		as     auth
		status int
		code   string
	}{
		{"no diversion field", `{"until":"` + until + `"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"until not a time", `{"diversion":true,"until":"tomorrow"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"until in the past", `{"diversion":true,"until":"2020-01-01T00:00:00Z"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"wrong type", `{"diversion":"yes"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"unknown field", `{"diversion":true,"why":"x"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"other county", `{"diversion":true}`, bearer(e.tokens["disp-b"]), 403, "forbidden"},
		{"integrator", `{"diversion":true}`, bearer(e.tokens["integ"]), 403, "forbidden"},
		{"no token", `{"diversion":true}`, noAuth, 401, "unauthorized"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "PATCH", "/api/v1/hospitals/H1", tt.body, tt.as)
			if r.status != tt.status || r.code() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	if r := e.do(t, "PATCH", "/api/v1/hospitals/H404", `{"diversion":true}`, bearer(e.tokens["city"])); r.status != 404 {
		t.Fatalf("unknown hospital: %d %s", r.status, r.body)
	}
	var hs struct{ Hospitals []dispatch.HospitalStatus }
	e.do(t, "GET", "/api/v1/hospitals", "", bearer(e.tokens["disp-b"])).decode(t, &hs)
	if len(hs.Hospitals) != 1 || hs.Hospitals[0].Diversion {
		t.Fatalf("hospitals %+v after refusals, want H1 open", hs.Hospitals)
	}

	r := e.do(t, "PATCH", "/api/v1/hospitals/H1", `{"diversion":true,"until":"`+until+`","reason":"CT down"}`, bearer(e.tokens["disp-a"]))
	if r.status != 200 {
		t.Fatalf("set diversion: %d %s", r.status, r.body)
	}
	e.do(t, "GET", "/api/v1/hospitals", "", bearer(e.tokens["disp-b"])).decode(t, &hs)
	if h := hs.Hospitals[0]; !h.Diversion || h.DiversionReason != "CT down" || h.DiversionBy != "disp-a" || h.DiversionUntil.Format(time.RFC3339) != until {
		t.Fatalf("hospital %+v, want diverting until %s", h, until)
	}
	var d dispatch.Destinations
	r = e.do(t, "GET", "/api/v1/incidents/"+inc.ID+"/destinations", "", bearer(e.tokens["disp-a"]))
	r.decode(t, &d)
	if r.status != 200 || d.Advice == nil || d.Advice.Hospital != "H1" || !d.Advice.Diversion || len(d.Advice.Reasons) == 0 {
		t.Fatalf("destinations %d %s, want H1 despite its diversion (the only hospital)", r.status, r.body)
	}
	if r := e.do(t, "GET", "/api/v1/incidents/"+inc.ID+"/destinations", "", bearer(e.tokens["disp-b"])); r.status != 403 {
		t.Fatalf("another county's call's destinations: %d", r.status)
	}
	var audit struct{ Entries []dispatch.AuditEntry }
	e.do(t, "GET", "/api/v1/audit", "", bearer(e.tokens["admin"])).decode(t, &audit)
	if last := audit.Entries[len(audit.Entries)-1]; last.Action != dispatch.AuditDiversion || last.Actor != "disp-a" || last.Subject != "H1" {
		t.Fatalf("last audit entry %+v, want the diversion", last)
	}
}

// TestUnitStatusOverHTTP: a dispatcher confirms a status with
// POST /api/v1/units/{id}/status; the lifecycle's rules hold.
func TestUnitStatusOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.move(t, "U01", centreA)
	inc := e.incident(t, centreA)
	if r := e.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", `{"unit":"U01"}`, bearer(e.tokens["disp-a"])); r.status != 201 {
		t.Fatalf("assign: %d %s", r.status, r.body)
	}
	refused := []struct {
		name   string
		unit   string
		body   string
		as     auth
		status int
		code   string
	}{
		{"impossible", "U01", `{"status":"at_hospital"}`, bearer(e.tokens["disp-a"]), 409, "conflict"},
		{"no status", "U01", `{}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"unknown status", "U01", `{"status":"flying"}`, bearer(e.tokens["disp-a"]), 400, "invalid"},
		{"other county", "U01", `{"status":"on_scene"}`, bearer(e.tokens["disp-b"]), 403, "forbidden"},
		{"integrator", "U01", `{"status":"on_scene"}`, bearer(e.tokens["integ"]), 403, "forbidden"},
		{"unknown unit", "U404", `{"status":"on_scene"}`, bearer(e.tokens["disp-a"]), 404, "not_found"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "POST", fmt.Sprintf("/api/v1/units/%s/status", tt.unit), tt.body, tt.as)
			if r.status != tt.status || r.code() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			if u, _ := e.svc.Unit(dispatch.System, "U01"); u.Status != dispatch.Dispatched {
				t.Fatalf("U01 %s after a refusal", u.Status)
			}
		})
	}
	r := e.do(t, "POST", "/api/v1/units/U01/status", `{"status":"on_scene"}`, bearer(e.tokens["disp-a"]))
	var u dispatch.UnitState
	r.decode(t, &u)
	if r.status != 200 || u.Status != dispatch.OnScene {
		t.Fatalf("confirm on_scene: %d %s", r.status, r.body)
	}
	ts, _ := e.svc.Transitions(context.Background(), dispatch.System, inc.ID)
	if last := ts[len(ts)-1]; last.Source != "dispatcher:disp-a" || last.To != dispatch.OnScene {
		t.Fatalf("last transition %+v", last)
	}
}

// FuzzDiversion: any body on PATCH /api/v1/hospitals/{id} is a 200 with
// the hospital or the contract's error body, never a 5xx; a 200 only for
// a body the API's strict decoding accepts with "diversion" set.
func FuzzDiversion(f *testing.F) {
	e := newEnv(f)
	for _, s := range []string{
		`{"diversion":true}`, `{"diversion":false}`, `{"diversion":true,"until":"2026-11-23T09:00:00Z","reason":"CT down"}`,
		`{"diversion":true,"until":"2026-11-23T09:00:00+08:00"}`, `{"diversion":false,"until":"2026-11-23T09:00:00Z"}`,
		`{"diversion":true,"until":"9999-12-31T23:59:59Z"}`, `{"diversion":true,"reason":"a\u0000b"}`,
		`{"diversion":1}`, `{"until":""}`, `{}`, `null`, `[]`, ``, `{`, `{"diversion":true} {}`,
	} {
		f.Add([]byte(s))
	}
	tok := e.tokens["disp-a"]
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("PATCH", "/api/v1/hospitals/H1", bytes.NewReader(body))
		bearer(tok)(req)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		if rec.Code == 200 {
			var v struct {
				Diversion *bool  `json:"diversion"`
				Until     string `json:"until"`
				Reason    string `json:"reason"`
			}
			if !strict(body, &v) || v.Diversion == nil {
				t.Fatalf("200 for %q", body)
			}
			var h dispatch.HospitalStatus
			if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || h.ID != "H1" {
				t.Fatalf("200 with body %q", rec.Body.Bytes())
			}
			return
		}
		checkError(t, rec)
	})
}
