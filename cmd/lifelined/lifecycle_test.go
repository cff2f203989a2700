package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// stores runs a test on the embedded store and on PostgreSQL.
var stores = []struct {
	name   string
	mutate func(t *testing.T) func(*Config)
}{
	{"sqlite", func(*testing.T) func(*Config) { return nil }},
	{"postgres", func(t *testing.T) func(*Config) {
		dsn := pgtest.DSN(t)
		return func(c *Config) { c.PostgresURL = dsn }
	}},
}

// press publishes a crew status press.
func (t *terminal) press(tb testing.TB, status, incident string) {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"ts": time.Now().UTC().Format(time.RFC3339Nano), "status": status, "incident": incident})
	t.publish(tb, telemetry.KindStatus, b, false)
}

// command waits for the next command of type typ on the terminal's cmd topic.
func (t *terminal) command(tb testing.TB, typ string) telemetry.Command {
	tb.Helper()
	return t.commandWithin(tb, typ, 5*time.Second)
}

// alerts returns the alert messages the console has seen.
func (c *console) alerts() []dispatch.Alert {
	var out []dispatch.Alert
	for _, raw := range c.of("alert", "alert") {
		var a dispatch.Alert
		_ = json.Unmarshal(raw, &a)
		out = append(out, a)
	}
	return out
}

// TestLifecycleOverMQTT drives the call lifecycle through the real server
// as terminals and a dispatcher would: an impossible press is rejected on
// the terminal's cmd topic and changes nothing; a unit that goes out of
// service en route puts the call back in the queue with an alert on the
// console; cancelling the call over the API stands the next unit down
// with a cancel command.
func TestLifecycleOverMQTT(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			m := startMain(t, st.mutate(t))
			con := dialConsole(t, m)
			waitFor(t, 5*time.Second, "snapshot", func() bool { return con.first() == "snapshot" })
			seat := orb.Point{104.9818, 29.1838}
			u1, u2 := m.Area.Units[0].ID, m.Area.Units[1].ID
			t1, t2 := newTerminal(t, m, u1), newTerminal(t, m, u2)
			p1, p2 := orb.Point{seat[0] + 0.002, seat[1]}, orb.Point{seat[0] + 0.004, seat[1]}
			t1.fix(t, p1)
			t2.fix(t, p2)
			waitFor(t, 2*time.Second, "both fixes", func() bool { return con.unitAt(u1, p1) && con.unitAt(u2, p2) })

			var inc dispatch.Incident
			if code := m.do(t, "POST", "/api/v1/incidents", map[string]any{
				"location": map[string]float64{"lat": seat.Lat(), "lon": seat.Lon()}, "priority": 1, "category": "chest_pain", "address": "county seat",
			}, &inc); code != http.StatusCreated {
				t.Fatalf("create incident: %d", code)
			}
			var a dispatch.Assignment
			if code := m.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": u1}, &a); code != http.StatusCreated {
				t.Fatalf("assign: %d", code)
			}
			t1.command(t, telemetry.CommandAssign)

			// dispatched -> at_hospital is not a press a crew can make.
			t1.press(t, "at_hospital", inc.ID)
			rej := t1.command(t, telemetry.CommandReject)
			if rej.Status != "at_hospital" || rej.Reason == "" {
				t.Fatalf("reject %+v", rej)
			}
			if got := getUnit(t, m, u1); got.Status != dispatch.Dispatched {
				t.Fatalf("unit %s after a rejected press, want dispatched", got.Status)
			}

			t1.press(t, "en_route", inc.ID)
			waitFor(t, 2*time.Second, "en_route", func() bool { return getUnit(t, m, u1).Status == dispatch.EnRoute })
			t1.press(t, "out_of_service", inc.ID)
			waitFor(t, 2*time.Second, "the call back in the queue", func() bool {
				var got dispatch.Incident
				m.do(t, "GET", "/api/v1/incidents/"+inc.ID, nil, &got)
				return got.Status == dispatch.IncidentOpen
			})
			waitFor(t, 2*time.Second, "an alert on the console", func() bool { return len(con.alerts()) > 0 })
			if al := con.alerts()[0]; al.Kind != dispatch.AlertAborted || al.Incident != inc.ID || al.Next == nil || al.Next.Unit != u2 {
				t.Fatalf("alert %+v, want aborted with %s next", al, u2)
			}

			if code := m.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": u2}, &a); code != http.StatusCreated {
				t.Fatalf("assign the next unit: %d", code)
			}
			t2.command(t, telemetry.CommandAssign)
			var ended dispatch.Incident
			if code := m.do(t, "PATCH", "/api/v1/incidents/"+inc.ID, map[string]string{"status": "cancelled", "outcome": "patient taken by family"}, &ended); code != http.StatusOK {
				t.Fatalf("cancel: %d", code)
			}
			if c := t2.command(t, telemetry.CommandCancel); c.Assignment != a.ID {
				t.Fatalf("cancel command %+v, want for %s", c, a.ID)
			}
			if got := getUnit(t, m, u2); got.Status != dispatch.Available {
				t.Fatalf("stood-down unit %s, want available", got.Status)
			}
			var timeline struct {
				Status      dispatch.IncidentStatus
				Outcome     string
				Transitions []dispatch.Transition
			}
			m.do(t, "GET", "/api/v1/incidents/"+inc.ID, nil, &timeline)
			if timeline.Status != dispatch.IncidentCancelled || timeline.Outcome != "patient taken by family" || len(timeline.Transitions) < 5 {
				t.Fatalf("timeline %+v", timeline)
			}
		})
	}
}
