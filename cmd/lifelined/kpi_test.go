package main

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/storetest"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// timeline is an incident as GET /api/v1/incidents/{id} shows it.
type timeline struct {
	dispatch.Incident
	Assignments []dispatch.Assignment
	Transitions []dispatch.Transition
}

// kpiMessages returns the kpi messages the console has seen for jur.
func (c *console) kpiMessages(jur string) []dispatch.KPIs {
	var out []dispatch.KPIs
	for _, m := range c.of("kpi", "kpi") {
		var k dispatch.KPIs
		if json.Unmarshal(m, &k) == nil && k.Jurisdiction == jur {
			out = append(out, k)
		}
	}
	return out
}

// ledgerOf computes, the test's own way, what the KPI ledger must say of
// calls as they stand at now: satisfaction counts, the on-scene counts of
// priority 1, and each stage's n, p50 and p90 (nearest rank, by counting).
func ledgerOf(calls []timeline, now time.Time) (sat [3]int, onScene [4]int, stages [6][3]float64) {
	var secs [6][]float64
	for _, c := range calls {
		first := func(ts []time.Time) time.Time {
			var f time.Time
			for _, t := range ts {
				if !t.IsZero() && (f.IsZero() || t.Before(f)) {
					f = t
				}
			}
			return f
		}
		var made, accepted []time.Time
		for _, a := range c.Assignments {
			made, accepted = append(made, a.CreatedAt), append(accepted, a.AcceptedAt)
		}
		reached := map[dispatch.UnitStatus][]time.Time{}
		for _, t := range c.Transitions {
			reached[t.To] = append(reached[t.To], t.At)
		}
		var clear time.Time
		if c.Status == dispatch.IncidentClosed {
			clear = c.ClosedAt
		}
		for i, at := range []time.Time{first(made), first(accepted), first(reached[dispatch.EnRoute]), first(reached[dispatch.OnScene]), first(reached[dispatch.AtHospital]), clear} {
			if !at.IsZero() {
				secs[i] = append(secs[i], math.Max(at.Sub(c.CreatedAt).Seconds(), 0))
			}
		}
		sat[0]++
		if c.Satisfaction == dispatch.SatisfiedOwn || c.Satisfaction == dispatch.SatisfiedLinked {
			sat[1]++
		} else {
			sat[2]++
		}
		if c.Priority == 1 {
			switch on := len(reached[dispatch.OnScene]) > 0; {
			case on:
				onScene[0]++ // due
				onScene[1]++ // reached
			case c.Status == dispatch.IncidentCancelled:
				onScene[3]++ // excluded
			case c.Status == dispatch.IncidentClosed || now.Sub(c.CreatedAt) >= time.Hour:
				onScene[0]++
			default:
				onScene[2]++ // pending
			}
		}
	}
	for i, v := range secs {
		if len(v) > 0 {
			stages[i] = [3]float64{float64(len(v)), storetest.NearestRank(v, 50), storetest.NearestRank(v, 90)}
		}
	}
	return sat, onScene, stages
}

func stagesOf(k dispatch.KPIs) [6][3]float64 {
	var out [6][3]float64
	for i, s := range []dispatch.StageKPI{k.Stages.Dispatch, k.Stages.Ack, k.Stages.EnRoute, k.Stages.OnScene, k.Stages.AtHospital, k.Stages.Clear} {
		if s.N > 0 {
			out[i] = [3]float64{float64(s.N), *s.P50, *s.P90}
		}
	}
	return out
}

// TestKPIsOverTheRealServer takes calls through the real server as a
// dispatcher and terminals would (an accepted call to hospital, a
// declined offer, a call out of reach, a cancelled call), then checks
// GET /api/v1/kpis against the ledger the test computes from each call's
// timeline, the kpi websocket message, GET /api/v1/coverage, and that the
// ledger is the same after a restart.
func TestKPIsOverTheRealServer(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			dir, mutate := t.TempDir(), st.mutate(t)
			config := func(c *Config) {
				if mutate != nil {
					mutate(c)
				}
				c.DataDir, c.KPIInterval = dir, 100*time.Millisecond
			}
			m := startMain(t, config)
			con := dialConsole(t, m)
			waitFor(t, 5*time.Second, "snapshot", func() bool { return con.first() == "snapshot" })
			seat := orb.Point{104.9818, 29.1838}
			zhaohua := orb.Point{105.03, 29.0} // a township 21 km from the seat
			var ids []string
			var terms []*terminal
			for i, u := range m.Area.Units[:3] {
				ids = append(ids, u.ID)
				terms = append(terms, newTerminal(t, m, u.ID))
				terms[i].fix(t, orb.Point{seat[0] + float64(i)*0.001, seat[1]})
			}
			waitFor(t, 2*time.Second, "the fixes", func() bool { return con.unitAt(ids[2], orb.Point{seat[0] + 0.002, seat[1]}) })

			call := func(p orb.Point, priority int) dispatch.Incident {
				t.Helper()
				var inc dispatch.Incident
				if code := m.do(t, "POST", "/api/v1/incidents", map[string]any{
					"location": map[string]float64{"lat": p.Lat(), "lon": p.Lon()}, "priority": priority, "category": "other",
				}, &inc); code != http.StatusCreated {
					t.Fatalf("create incident: %d", code)
				}
				return inc
			}
			assign := func(inc string, i int) dispatch.Assignment {
				t.Helper()
				var a dispatch.Assignment
				if code := m.do(t, "POST", "/api/v1/incidents/"+inc+"/assignments", map[string]string{"unit": ids[i]}, &a); code != http.StatusCreated {
					t.Fatalf("assign %s: %d", ids[i], code)
				}
				terms[i].command(t, telemetry.CommandAssign)
				return a
			}
			ack := func(i int, a dispatch.Assignment, accepted bool) {
				terms[i].publish(t, telemetry.KindAck, telemetry.EncodeAck(telemetry.Ack{Assignment: a.ID, Accepted: accepted}), false)
			}

			// A priority-1 call: the first unit accepts, takes the patient
			// to hospital and clears.
			c1 := call(seat, 1)
			ack(0, assign(c1.ID, 0), true)
			for _, s := range []string{"en_route", "on_scene", "transporting", "at_hospital", "available"} {
				terms[0].press(t, s, c1.ID)
			}
			// A priority-2 call: the second unit declines; the first goes,
			// accepting by pressing on_scene, and treats on scene.
			c2 := call(seat, 2)
			ack(1, assign(c2.ID, 1), false)
			waitFor(t, 2*time.Second, "the decline", func() bool { return getUnit(t, m, ids[1]).Status == dispatch.Available })
			assign(c2.ID, 0)
			terms[0].press(t, "on_scene", c2.ID)
			terms[0].press(t, "available", c2.ID)
			// A priority-1 call 21 km from every unit, and a cancelled call.
			c3 := call(zhaohua, 1)
			c4 := call(seat, 3)
			if code := m.do(t, "PATCH", "/api/v1/incidents/"+c4.ID, map[string]string{"status": "cancelled", "outcome": "false alarm"}, nil); code != http.StatusOK {
				t.Fatalf("cancel: %d", code)
			}
			if c1.Satisfaction != dispatch.SatisfiedOwn || c3.Satisfaction != dispatch.Unsatisfied || c3.SatisfactionReason == "" || c3.Jurisdiction != "510322" {
				t.Fatalf("satisfaction at intake: %+v / %+v", c1, c3)
			}

			var calls []timeline
			for _, id := range []string{c1.ID, c2.ID, c3.ID, c4.ID} {
				var tl timeline
				m.do(t, "GET", "/api/v1/incidents/"+id, nil, &tl)
				calls = append(calls, tl)
			}
			var got dispatch.KPIs
			if code := m.do(t, "GET", "/api/v1/kpis?jurisdiction=510322", nil, &got); code != http.StatusOK {
				t.Fatalf("GET kpis: %d", code)
			}
			sat, on, stages := ledgerOf(calls, time.Now())
			if g := [3]int{got.Satisfaction.Recorded, got.Satisfaction.Satisfied, got.Satisfaction.Missed}; got.Calls != 4 || g != sat || *got.Satisfaction.Rate != 0.75 {
				t.Fatalf("calls %d, satisfaction %+v, want %v", got.Calls, got.Satisfaction, sat)
			}
			if ms := got.Satisfaction.Misses; len(ms) != 1 || ms[0].Incident != c3.ID || ms[0].Reason != c3.SatisfactionReason {
				t.Fatalf("misses %+v", ms)
			}
			if g := [4]int{got.OnScene.Due, got.OnScene.Reached, got.OnScene.Pending, got.OnScene.Excluded}; g != on || on != [4]int{1, 1, 1, 0} {
				t.Fatalf("on scene %+v, want due, reached, pending, excluded %v", got.OnScene, on)
			}
			if g := stagesOf(got); g != stages || g[1][0] != 2 || g[5][0] != 2 {
				t.Fatalf("stages (n, p50, p90: dispatch, ack, en route, on scene, at hospital, clear)\n got %v\nwant %v", g, stages)
			}

			waitFor(t, 5*time.Second, "the kpi message", func() bool {
				ks := con.kpiMessages("510322")
				return len(ks) > 0 && ks[len(ks)-1].Calls == 4
			})
			ks := con.kpiMessages("510322")
			last := ks[len(ks)-1]
			if stagesOf(last) != stages || *last.Satisfaction.Rate != 0.75 || last.OnScene.Pending != 1 || last.Coverage == nil || last.Coverage.Cells < 4000 {
				t.Fatalf("kpi message %+v", last)
			}
			if !slices.ContainsFunc(ks, func(k dispatch.KPIs) bool { return k.Coverage.Covered > 0 }) {
				t.Fatal("no kpi message saw the units cover the seat")
			}
			if city := con.kpiMessages("510300"); len(city) == 0 || city[len(city)-1].Calls != 4 {
				t.Fatalf("the city's kpi messages: %+v", city)
			}

			for i, term := range terms {
				term.fix(t, orb.Point{seat[0] + float64(i)*0.001 + 0.0001, seat[1]})
			}
			var cov dispatch.CoverageReport
			if code := m.do(t, "GET", "/api/v1/coverage?jurisdiction=510322", nil, &cov); code != http.StatusOK {
				t.Fatalf("GET coverage: %d", code)
			}
			if cov.Units != 3 || cov.Covered == 0 || cov.Covered >= cov.Cells || cov.MoveUp == nil || !slices.Contains(ids, cov.MoveUp.Unit) || cov.MoveUp.GainCells <= 0 {
				t.Fatalf("coverage %+v, move-up %+v", cov.CoverageShare, cov.MoveUp)
			}

			// The ledger is the record's: the same after a restart.
			period := "/api/v1/kpis?jurisdiction=510322&from=" + url.QueryEscape(got.From.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(got.To.Format(time.RFC3339Nano))
			var before, after json.RawMessage
			m.do(t, "GET", period, nil, &before)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			again := startMain(t, config)
			again.do(t, "GET", period, nil, &after)
			if string(before) != string(after) || len(before) < 100 {
				t.Fatalf("KPIs before the restart\n%s\nafter it\n%s", before, after)
			}
		})
	}
}

// TestKPIIntervalFlag: --kpi-interval and LIFELINE_KPI_INTERVAL set how
// often the kpi message may change; zero is refused.
func TestKPIIntervalFlag(t *testing.T) {
	c := DefaultConfig()
	if err := c.Parse("lifelined", nil, func(k string) string { return map[string]string{"LIFELINE_KPI_INTERVAL": "2s"}[k] }); err != nil || c.KPIInterval != 2*time.Second {
		t.Fatalf("from the environment: %v, %v", c.KPIInterval, err)
	}
	c = DefaultConfig()
	if c.KPIInterval != 5*time.Second {
		t.Fatalf("default %v, want 5s", c.KPIInterval)
	}
	if err := c.Parse("lifelined", []string{"--kpi-interval", "0s"}, func(string) string { return "" }); err == nil {
		t.Fatal("--kpi-interval 0s accepted")
	}
}
