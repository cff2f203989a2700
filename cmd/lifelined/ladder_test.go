package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/geo"
)

// ladderArea writes an area file of a city with two neighbouring
// counties, A (with a town) and B, and returns its path.
func ladderArea(tb testing.TB) string {
	tb.Helper()
	region := func(id string, b orb.Bound) *geo.Region {
		r, err := geo.NewRegion(id, id, b.ToPolygon())
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
	a := &dispatch.Area{
		Name: "ladder",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: "510300", Name: "City"},
			{ID: "510322", Name: "A", Parent: "510300", Region: region("510322", orb.Bound{Min: orb.Point{104.8, 29.0}, Max: orb.Point{105.2, 29.4}})},
			{ID: "510311", Name: "B", Parent: "510300", Region: region("510311", orb.Bound{Min: orb.Point{105.2, 29.0}, Max: orb.Point{105.5, 29.4}})},
		},
		Zones: []dispatch.UrbanZone{{ID: "ZA", Name: "A town", Jurisdiction: "510322", Region: region("ZA", orb.Bound{Min: orb.Point{104.97, 29.17}, Max: orb.Point{105.03, 29.23}})}},
		Units: []dispatch.Unit{
			{ID: "A-1", Callsign: "A1", Jurisdiction: "510322", Capabilities: []string{dispatch.ALS}},
			{ID: "B-1", Callsign: "B1", Jurisdiction: "510311", Capabilities: []string{dispatch.ALS}},
		},
	}
	b, err := geojson.Encode(a)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "ladder.geojson")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestLadderOverAPI: through the real server, on SQLite and PostgreSQL,
// a call whose own county has no unit near gets the neighbouring county's
// unit first, labelled step neighbour with its jurisdiction; a county
// dispatcher needs consent to send it, a city user does not.
func TestLadderOverAPI(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			area := ladderArea(t)
			mutate := st.mutate(t)
			m := startMain(t, func(c *Config) {
				c.Area = area
				if mutate != nil {
					mutate(c)
				}
			})
			const pw = "a long enough password"
			for _, u := range []map[string]string{
				{"username": "county-a", "password": pw, "role": "dispatcher", "jurisdiction": "510322"},
				{"username": "city", "password": pw, "role": "city", "jurisdiction": "510300"},
			} {
				if code := m.do(t, "POST", "/api/v1/users", u, nil); code != http.StatusCreated {
					t.Fatalf("create user %s: %d", u["username"], code)
				}
			}
			county, city := m.login(t, "county-a", pw), m.login(t, "city", pw)

			border := orb.Point{105.15, 29.3}
			a1, b1 := newTerminal(t, m, "A-1"), newTerminal(t, m, "B-1")
			a1.fix(t, orb.Point{104.85, 29.3}) // about 29 km west, beyond the widest radius
			b1.fix(t, orb.Point{105.25, 29.3}) // about 10 km east, over the county line
			waitFor(t, 5*time.Second, "both fixes", func() bool {
				return getUnit(t, m, "A-1").Position != nil && getUnit(t, m, "B-1").Position != nil
			})

			var inc struct {
				ID              string          `json:"id"`
				RadiusM         float64         `json:"radius_m"`
				Recommendations json.RawMessage `json:"recommendations"`
			}
			call := map[string]any{"location": map[string]float64{"lat": border.Lat(), "lon": border.Lon()}, "priority": 2, "category": "trauma", "address": "near the county line"}
			if code := doJSON(t, county, "POST", m.url("/api/v1/incidents"), call, &inc); code != http.StatusCreated {
				t.Fatalf("create incident: %d", code)
			}
			check := func(t *testing.T, raw json.RawMessage, wantConsent bool) {
				t.Helper()
				var recs struct {
					RadiusM    float64                      `json:"radius_m"`
					Candidates []map[string]json.RawMessage `json:"candidates"`
				}
				if err := json.Unmarshal(raw, &recs); err != nil {
					t.Fatal(err)
				}
				if recs.RadiusM != 20000 || inc.RadiusM != 10000 {
					t.Errorf("radius used %v, the call's first %v; want 20000 (widened) and 10000", recs.RadiusM, inc.RadiusM)
				}
				if len(recs.Candidates) != 2 {
					t.Fatalf("candidates %s, want B-1 then A-1", raw)
				}
				want := []map[string]string{
					{"unit": `"B-1"`, "step": `"neighbour"`, "jurisdiction": `"510311"`, "needs_consent": "false", "within_radius": "true"},
					{"unit": `"A-1"`, "step": `"own_widened"`, "jurisdiction": `"510322"`, "needs_consent": "false", "within_radius": "false"},
				}
				if wantConsent {
					want[0]["needs_consent"] = "true"
				}
				for i, w := range want {
					for k, v := range w {
						if got := string(recs.Candidates[i][k]); got != v {
							t.Errorf("candidate %d %s = %s, want %s", i, k, got, v)
						}
					}
				}
			}
			t.Run("county dispatcher, at intake", func(t *testing.T) { check(t, inc.Recommendations, true) })
			for _, who := range []struct {
				name    string
				token   string
				consent bool
			}{{"county dispatcher", county, true}, {"city user", city, false}} {
				t.Run(who.name, func(t *testing.T) {
					var raw json.RawMessage
					if code := doJSON(t, who.token, "GET", m.url("/api/v1/incidents/"+inc.ID+"/recommendations"), nil, &raw); code != http.StatusOK {
						t.Fatalf("recommendations: %d", code)
					}
					check(t, raw, who.consent)
				})
			}
		})
	}
}

// TestConsoleRingShowsRadiusUsed: when the search for a rural call had to
// widen, the console's ring around the call shows the widened radius the
// recommendations used, not the call's first one.
func TestConsoleRingShowsRadiusUsed(t *testing.T) {
	m := startMain(t, nil)
	term := newTerminal(t, m, "FS-01")
	term.fix(t, orb.Point{105.215, 29.140}) // 古佛, about 11 km from the call
	waitFor(t, 5*time.Second, "the fix", func() bool { return getUnit(t, m, "FS-01").Position != nil })

	ctx := chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(m.url("/")),
		chromedp.WaitVisible(css(`#login-form`)),
		chromedp.SetValue(css(`#login-username`), "admin"),
		chromedp.SetValue(css(`#login-password`), testAdminPassword),
		chromedp.Click(css(`#login-submit`)),
		chromedp.WaitVisible(css(`#conn.live`)),
		// A call at 代寺, in the countryside: nothing within 10 km.
		chromedp.SetValue(css(`#call-lat`), "29.210000"),
		chromedp.SetValue(css(`#call-lon`), "105.135000"),
		chromedp.Click(css(`#call-submit`)),
		chromedp.WaitVisible(css(`#recs li[data-rec-unit="FS-01"]`)),
	); err != nil {
		t.Fatalf("take a call in the console: %v", err)
	}
	radius := func() string {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.radius-ring')?.getAttribute('data-radius') ?? ''`))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	waitFor(t, 5*time.Second, "the ring at 20 km", func() bool { return radius() == "20000" })
}
