package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// TestKPIs: the ledger on the wire, in the shape the contract names,
// scoped by the caller's access, with bad periods refused.
func TestKPIs(t *testing.T) {
	e := newEnv(t)
	e.move(t, "U01", centreA)
	e.incident(t, centreA)
	e.incident(t, centreB)
	e.clock.Add(time.Minute)
	var got struct {
		Jurisdiction string
		From, To     time.Time
		Calls        int
		Satisfaction struct {
			Rate   *float64
			Target float64
			Misses []struct{ Incident, Reason string }
		}
		OnScene map[string]any `json:"on_scene"`
		Stages  map[string]map[string]any
	}
	r := e.do(t, "GET", "/api/v1/kpis", "", bearer(e.tokens["disp-a"]))
	if r.status != http.StatusOK {
		t.Fatalf("GET kpis: %d %s", r.status, r.body)
	}
	r.decode(t, &got)
	if got.Jurisdiction != countyA || got.Calls != 1 || got.Satisfaction.Rate == nil || *got.Satisfaction.Rate != 1 || got.Satisfaction.Target != 0.95 ||
		got.Satisfaction.Misses == nil || !got.To.Equal(e.clock.Now()) || got.To.Sub(got.From) != 24*time.Hour {
		t.Fatalf("county A: %s", pretty(r.body))
	}
	for _, stage := range []string{"dispatch", "ack", "en_route", "on_scene", "at_hospital", "clear"} {
		if _, ok := got.Stages[stage]["p50_s"]; !ok {
			t.Errorf("stage %s lacks p50_s: %s", stage, pretty(r.body))
		}
	}
	if got.OnScene["target"] != 0.98 {
		t.Errorf("on_scene: %v", got.OnScene)
	}
	e.do(t, "GET", "/api/v1/kpis?jurisdiction="+countyB, "", bearer(e.tokens["disp-b"])).decode(t, &got)
	if got.Calls != 1 || got.Satisfaction.Rate == nil || *got.Satisfaction.Rate != 0 || len(got.Satisfaction.Misses) != 1 || got.Satisfaction.Misses[0].Reason == "" {
		t.Fatalf("county B: %+v", got)
	}
	e.do(t, "GET", "/api/v1/kpis", "", bearer(e.tokens["city"])).decode(t, &got)
	if got.Jurisdiction != cityID || got.Calls != 2 {
		t.Fatalf("the city: %+v", got)
	}
	from := e.clock.Now().Add(-2 * time.Hour).Format(time.RFC3339)
	to := e.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	e.do(t, "GET", "/api/v1/kpis?from="+url.QueryEscape(from)+"&to="+url.QueryEscape(to), "", bearer(e.tokens["city"])).decode(t, &got)
	if got.Calls != 0 || got.Satisfaction.Rate != nil {
		t.Fatalf("an hour before the calls: %+v", got)
	}
	tests := []struct {
		name, query, who string
		status           int
	}{
		{"bad from", "from=yesterday", "disp-a", http.StatusBadRequest},
		{"bad to", "to=2026-13-01T00:00:00Z", "disp-a", http.StatusBadRequest},
		{"from after to", "from=" + url.QueryEscape(to) + "&to=" + url.QueryEscape(from), "disp-a", http.StatusBadRequest},
		{"a year", "from=1700000000000&to=1731536000000", "disp-a", http.StatusBadRequest},
		{"another county", "jurisdiction=" + countyB, "disp-a", http.StatusForbidden},
		{"unknown jurisdiction", "jurisdiction=999999", "city", http.StatusBadRequest},
		{"an integrator may read", "", "integ", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(t, "GET", "/api/v1/kpis?"+tt.query, "", bearer(e.tokens[tt.who])); r.status != tt.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tt.status)
			}
		})
	}
	if r := e.do(t, "GET", "/api/v1/kpis", "", noAuth); r.status != http.StatusUnauthorized {
		t.Fatalf("without a session: %d", r.status)
	}
}

// TestCoverageAPI: the coverage of a county on the wire, the move-up it
// suggests, scoped like every other read.
func TestCoverageAPI(t *testing.T) {
	e := newEnv(t)
	e.move(t, "U01", orb.Point{centreA[0] + 0.15, centreA[1] + 0.15}) // far from its station
	var got map[string]json.RawMessage
	r := e.do(t, "GET", "/api/v1/coverage", "", bearer(e.tokens["disp-a"]))
	if r.status != http.StatusOK {
		t.Fatalf("GET coverage: %d %s", r.status, r.body)
	}
	r.decode(t, &got)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"at", "cell_m", "cells", "covered", "jurisdiction", "move_up", "share", "truncated", "uncovered", "units"}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	var c struct {
		Jurisdiction   string
		CellM          float64 `json:"cell_m"`
		Cells, Covered int
		Share          float64
		Uncovered      [][2]float64
		MoveUp         struct {
			Unit      string
			ToStation string `json:"to_station"`
			GainCells int    `json:"gain_cells"`
		} `json:"move_up"`
	}
	r.decode(t, &c)
	if c.Jurisdiction != countyA || c.CellM != 500 || c.Covered == 0 || c.Share <= 0 || c.Share >= 1 || len(c.Uncovered) == 0 ||
		c.MoveUp.Unit != "U01" || c.MoveUp.ToStation != "S1" || c.MoveUp.GainCells <= 0 {
		t.Fatalf("county A: %+v", c)
	}
	if p := c.Uncovered[0]; p[0] < 29 || p[0] > 29.4 || p[1] < 104.8 || p[1] > 105.2 {
		t.Fatalf("uncovered cell %v: want [lat, lon] in county A", p)
	}
	if r := e.do(t, "GET", "/api/v1/coverage?jurisdiction="+countyB, "", bearer(e.tokens["disp-a"])); r.status != http.StatusForbidden {
		t.Fatalf("another county's coverage: %d", r.status)
	}
	e.do(t, "GET", "/api/v1/coverage?jurisdiction="+countyB, "", bearer(e.tokens["city"])).decode(t, &c)
	if c.Jurisdiction != countyB || c.Covered != 0 || c.Cells == 0 {
		t.Fatalf("county B as the city: %+v", c)
	}
}
