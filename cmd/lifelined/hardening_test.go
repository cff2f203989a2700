package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// The tests of issue 7 ("what an adversarial test of the running server
// found"), ingest side, each through the real server.

// TestNULNeverReachesTheRecord: a NUL, which PostgreSQL cannot store in
// text, is a 400 at the HTTP API and, in a terminal's report, either
// dropped from free text (an ack's reason) or a counted malformed report;
// the terminal's message is acknowledged either way and what it sends
// next arrives.
func TestNULNeverReachesTheRecord(t *testing.T) {
	m := startMain(t, func(c *Config) { c.PostgresURL = pgtest.DSN(t) })
	unit := m.Area.Units[0].ID
	term := newTerminal(t, m, unit)
	seat := orb.Point{104.9818, 29.1838}
	term.fix(t, seat)

	call := func(address, externalID, source string) map[string]any {
		return map[string]any{"location": map[string]float64{"lat": seat.Lat(), "lon": seat.Lon()}, "priority": 2,
			"category": "other", "address": address, "external_id": externalID, "source": source}
	}
	for _, tt := range []struct {
		name, path string
		body       any
		token      string
	}{
		{"address", "/api/v1/incidents", call("Main St\x00", "", ""), m.token},
		{"external id", "/api/v1/incidents", call("Main St", "x\x00", "cad"), m.token},
		{"source", "/api/v1/incidents", call("Main St", "x", "cad\x00"), m.token},
		{"sign-in username", "/api/v1/sessions", map[string]string{"username": "admin\x00", "password": "x"}, ""},
	} {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if code := doJSON(t, tt.token, "POST", m.url(tt.path), tt.body, &e); code != http.StatusBadRequest || e.Error.Code != "invalid" {
			t.Errorf("NUL in %s: %d %s, want 400 invalid", tt.name, code, e.Error.Code)
		}
	}

	var inc struct{ ID string }
	if code := m.do(t, "POST", "/api/v1/incidents", call("Main St", "", ""), &inc); code != http.StatusCreated {
		t.Fatalf("create incident: %d", code)
	}
	var a dispatch.Assignment
	if code := m.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": unit}, &a); code != http.StatusCreated {
		t.Fatalf("assign: %d", code)
	}
	select {
	case <-term.cmds:
	case <-time.After(5 * time.Second):
		t.Fatal("no assign command")
	}
	// Firmware that ends its strings with a NUL: the decline is taken, the
	// NUL is not. (It used to fail the write, go unacknowledged and hold
	// every later report of the unit behind its retransmission.)
	term.publish(t, telemetry.KindAck, telemetry.EncodeAck(telemetry.Ack{Assignment: a.ID, Reason: "vehicle fault\x00"}), false)
	term.publish(t, telemetry.KindStatus, []byte(`{"status":"available","incident":"`+inc.ID+`\u0000"}`), false)
	next := orb.Point{seat[0] + 0.0005, seat[1]}
	term.fix(t, next)
	waitFor(t, 2*time.Second, "the fix after the NULs", func() bool {
		p := getUnit(t, m, unit).Position
		return p != nil && p.Seq == term.seq
	})
	var view struct {
		Assignments []dispatch.Assignment `json:"assignments"`
	}
	if code := m.do(t, "GET", "/api/v1/incidents/"+inc.ID, nil, &view); code != http.StatusOK || len(view.Assignments) != 1 {
		t.Fatalf("incident: %d %+v", code, view)
	}
	if got := view.Assignments[0]; got.Status != dispatch.AssignDeclined || got.Reason != "vehicle fault" {
		t.Fatalf("assignment %s %q, want declined %q", got.Status, got.Reason, "vehicle fault")
	}
	metrics := get(t, m.url("/metrics"))
	if !strings.Contains(metrics, `lifeline_telemetry_rejected_total{kind="status",reason="malformed"} 1`) {
		t.Errorf("the status with a NUL in its incident is not counted as malformed:\n%s", grepLines(metrics, "rejected_total"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
