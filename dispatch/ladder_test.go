package dispatch_test

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// A city of three counties for the ladder, west to east: C, a county of
// the city that touches neither of the others; A, the home county, with an
// urban zone around its centre; B, its neighbour, sharing A's eastern
// edge. D is a county of another city, east of B with a gap.
const (
	ladCity      = "510300"
	ladA         = "510322"
	ladB         = "510311"
	ladC         = "510321"
	ladOtherCity = "510400"
	ladD         = "510402"
)

var (
	centreA = orb.Point{105.0, 29.2}
	boxA    = orb.Bound{Min: orb.Point{104.8, 29.0}, Max: orb.Point{105.2, 29.4}}
	boxB    = orb.Bound{Min: orb.Point{105.2, 29.0}, Max: orb.Point{105.5, 29.4}}
	boxC    = orb.Bound{Min: orb.Point{104.4, 29.0}, Max: orb.Point{104.7, 29.4}}
	boxD    = orb.Bound{Min: orb.Point{105.6, 29.0}, Max: orb.Point{105.9, 29.4}}
)

// cityArea returns the ladder's city with units, after change (may be nil).
func cityArea(tb testing.TB, units []dispatch.Unit, change func(*dispatch.Area)) *dispatch.Area {
	tb.Helper()
	region := func(id string, b orb.Bound) *geo.Region { return dispatchtest.Region(tb, id, b.ToPolygon()) }
	a := &dispatch.Area{
		Name: "ladder",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: ladCity, Name: "city"},
			{ID: ladA, Name: "A", Parent: ladCity, Region: region(ladA, boxA)},
			{ID: ladB, Name: "B", Parent: ladCity, Region: region(ladB, boxB)},
			{ID: ladC, Name: "C", Parent: ladCity, Region: region(ladC, boxC)},
			{ID: ladOtherCity, Name: "other city"},
			{ID: ladD, Name: "D", Parent: ladOtherCity, Region: region(ladD, boxD)},
		},
		Zones: []dispatch.UrbanZone{{ID: "ZA", Name: "A town", Jurisdiction: ladA, Region: dispatchtest.Region(tb, "ZA", dispatchtest.Square(centreA, 0.03))}},
		Units: units,
	}
	if change != nil {
		change(a)
	}
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	return a
}

// unit is a registry entry.
func unit(id, jur string, caps ...string) dispatch.Unit {
	return dispatch.Unit{ID: id, Callsign: "C-" + id, Jurisdiction: jur, Capabilities: caps}
}

// ladderFixture is a service on the ladder's city.
func ladderFixture(tb testing.TB, units []dispatch.Unit, cfg func(*dispatch.Config)) *fixture {
	tb.Helper()
	return fixtureOn(tb, cityArea(tb, units, nil), cfg)
}

// fixtureOn is a service on area a with a memory store.
func fixtureOn(tb testing.TB, a *dispatch.Area, cfg func(*dispatch.Config)) *fixture {
	tb.Helper()
	f := &fixture{clock: dispatchtest.NewClock(clock0), bus: dispatch.NewBus(), cmds: &recorder{}, area: a, seq: map[string]uint64{}}
	c := dispatch.Config{Area: a, Store: memory.NewStore(), Tracks: memory.NewTracks(100), Events: f.bus, Commands: f.cmds, Now: f.clock.Now, Logger: quiet}
	if cfg != nil {
		cfg(&c)
	}
	svc, err := dispatch.NewService(context.Background(), c)
	if err != nil {
		tb.Fatal(err)
	}
	f.svc = svc
	return f
}

// at returns the point metres east and north of p.
func at(p orb.Point, east, north float64) orb.Point {
	m := geo.EarthRadius * math.Pi / 180
	return orb.Point{p[0] + east/(m*math.Cos(p[1]*math.Pi/180)), p[1] + north/m}
}

// callAt takes a call at p of priority and category for by.
func (f *fixture) callAt(tb testing.TB, by dispatch.Principal, p orb.Point, priority dispatch.Priority, cat dispatch.Category) (*dispatch.Incident, dispatch.Recommendations) {
	tb.Helper()
	inc, recs, _, err := f.svc.CreateIncident(context.Background(), by, dispatch.NewIncident{
		Location: dispatch.LatLon{Lat: p.Lat(), Lon: p.Lon()}, Priority: priority, Category: cat,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return inc, recs
}

// pressNow is a crew status press of unit at the fixture's clock, which
// it leaves where it is.
func (f *fixture) pressNow(tb testing.TB, unit string, statuses ...string) {
	tb.Helper()
	for _, st := range statuses {
		if err := f.svc.Status(context.Background(), telemetry.Status{Unit: unit, Time: f.clock.Now(), Status: st}); err != nil {
			tb.Fatalf("press %s: %v", st, err)
		}
	}
}

// dispatcherOf is a county (or city) dispatcher.
func dispatcherOf(jur string) dispatch.Principal {
	return dispatch.Principal{Name: "d-" + jur, Role: dispatch.RoleDispatcher, Jurisdiction: jur}
}

func cityUser() dispatch.Principal {
	return dispatch.Principal{Name: "city", Role: dispatch.RoleCity, Jurisdiction: ladCity}
}

// units lists the candidates' ids in order.
func unitsOf(recs dispatch.Recommendations) []string {
	out := make([]string, len(recs.Candidates))
	for i, c := range recs.Candidates {
		out[i] = c.Unit
	}
	return out
}

// hasReason reports whether some reason of c contains part.
func hasReason(c dispatch.Recommendation, part string) bool {
	return slices.ContainsFunc(c.Reasons, func(r string) bool { return strings.Contains(r, part) })
}

// TestLadderScenarios are the dispatcher's cases of issue 8 on a city of
// three counties built here.
func TestLadderScenarios(t *testing.T) {
	rural := orb.Point{104.9, 29.32} // A's north-west, outside the town
	border := orb.Point{105.15, 29.3}
	type placed struct {
		unit dispatch.Unit
		p    orb.Point
	}
	tests := []struct {
		name       string
		units      []placed
		call       orb.Point
		priority   dispatch.Priority
		category   dispatch.Category
		by         dispatch.Principal
		offline    []string
		wantZone   geo.Zone
		wantRadius float64
		want       []string // candidates in order
		check      func(t *testing.T, recs dispatch.Recommendations)
	}{{
		name:  "urban call: the free unit 4 km away is sent",
		units: []placed{{unit("U4", ladA), at(centreA, 0, 4000)}},
		call:  centreA, priority: 2, category: dispatch.CatTrauma, by: dispatcherOf(ladA),
		wantZone: geo.Urban, wantRadius: 5000, want: []string{"U4"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			c := recs.Candidates[0]
			if c.Step != dispatch.StepOwn || !c.WithinRadius || c.NeedsConsent || c.Jurisdiction != ladA {
				t.Errorf("candidate %+v, want own, within the radius, no consent, of %s", c, ladA)
			}
		},
	}, {
		name:  "urban call: the only free unit 6 km away is listed, the ladder climbs and says why",
		units: []placed{{unit("U6", ladA), at(centreA, 0, -6000)}},
		call:  centreA, priority: 2, category: dispatch.CatTrauma, by: dispatcherOf(ladA),
		wantZone: geo.Urban, wantRadius: 5000, want: []string{"U6"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			c := recs.Candidates[0]
			if c.Step != dispatch.StepOwnWidened || c.WithinRadius {
				t.Errorf("candidate %+v, want own_widened outside the radius", c)
			}
			if !hasReason(c, "no unit free within 5 km") || !hasReason(c, "urban 5 km radius") {
				t.Errorf("reasons %q do not say why the ladder climbed", c.Reasons)
			}
		},
	}, {
		name: "rural call: units at 12 and 18 km, the 12 km one first, the radius widened",
		units: []placed{
			{unit("U18", ladA), at(rural, 18000, 0)},
			{unit("U12", ladA), at(rural, 12000, 0)},
		},
		call: rural, priority: 2, category: dispatch.CatTrauma, by: dispatcherOf(ladA),
		wantZone: geo.Rural, wantRadius: 20000, want: []string{"U12", "U18"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			for _, c := range recs.Candidates {
				if c.Step != dispatch.StepOwnWidened || !c.WithinRadius {
					t.Errorf("candidate %+v, want own_widened within the widened radius", c)
				}
			}
			if !hasReason(recs.Candidates[0], "rural radius widened to 20 km") {
				t.Errorf("reasons %q do not say the radius widened", recs.Candidates[0].Reasons)
			}
		},
	}, {
		name:  "only a neighbouring county has a unit: listed as neighbour, needing consent",
		units: []placed{{unit("B1", ladB), at(border, 9000, 0)}, {unit("A1", ladA), at(border, -30000, 0)}},
		call:  border, priority: 2, category: dispatch.CatTrauma, by: dispatcherOf(ladA),
		wantZone: geo.Rural, wantRadius: 20000, want: []string{"B1", "A1"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			c := recs.Candidates[0]
			if c.Step != dispatch.StepNeighbour || !c.NeedsConsent || c.Jurisdiction != ladB || !c.WithinRadius {
				t.Errorf("candidate %+v, want a neighbour of %s within the radius needing consent", c, ladB)
			}
			if !hasReason(c, "no unit of A free within 20 km") || !hasReason(c, "needs its consent") {
				t.Errorf("reasons %q", c.Reasons)
			}
			if a := recs.Candidates[1]; a.Step != dispatch.StepOwnWidened || a.WithinRadius || a.NeedsConsent {
				t.Errorf("own unit %+v, want own_widened outside the radius", a)
			}
		},
	}, {
		name:  "a city user borrows a neighbour's unit without consent",
		units: []placed{{unit("B1", ladB), at(border, 9000, 0)}},
		call:  border, priority: 2, category: dispatch.CatTrauma, by: cityUser(),
		wantZone: geo.Rural, wantRadius: 20000, want: []string{"B1"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			if c := recs.Candidates[0]; c.Step != dispatch.StepNeighbour || c.NeedsConsent {
				t.Errorf("candidate %+v, want neighbour without consent", c)
			}
		},
	}, {
		name: "the rest of the city comes after the neighbours; another city's units never",
		units: []placed{
			{unit("C1", ladC), at(boxC.Max, -2000, -20000)},
			{unit("B1", ladB), at(boxB.Max, -2000, -20000)},
			{unit("D1", ladD), at(boxD.Min, 2000, 20000)},
		},
		call: at(boxA.Min, 2000, 20000), priority: 3, category: dispatch.CatOther, by: dispatcherOf(ladA),
		wantZone: geo.Rural, wantRadius: 20000, want: []string{"C1", "B1"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			if c := recs.Candidates[0]; c.Step != dispatch.StepCity || !c.NeedsConsent || !hasReason(c, "the ladder climbs to the rest of the city") {
				t.Errorf("candidate %+v, want city with the climb explained", c)
			}
			if c := recs.Candidates[1]; c.Step != dispatch.StepNeighbour || c.WithinRadius {
				t.Errorf("candidate %+v, want a neighbour outside the radius as a backup", c)
			}
		},
	}, {
		name: "a stale or offline unit is never recommended, however near",
		units: []placed{
			{unit("OFF", ladA, dispatch.ALS), at(centreA, 100, 0)},
			{unit("OLD", ladA, dispatch.ALS), at(centreA, 200, 0)},
			{unit("OK", ladA), at(centreA, 3000, 0)},
		},
		call: centreA, priority: 1, category: dispatch.CatChestPain, by: dispatcherOf(ladA), offline: []string{"OFF"},
		wantZone: geo.Urban, wantRadius: 5000, want: []string{"OK"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			why := map[string]string{}
			for _, e := range recs.Excluded {
				why[e.Unit] = e.Reason
			}
			if why["OFF"] != "terminal offline" || !strings.HasPrefix(why["OLD"], "position stale") {
				t.Errorf("exclusions %v", why)
			}
			if !hasReason(recs.Candidates[0], "BLS only: no ALS unit free within 5 km") {
				t.Errorf("reasons %q", recs.Candidates[0].Reasons)
			}
		},
	}, {
		name: "priority 1: the ALS unit at 0.6 km outranks the BLS unit at 0.5 km, which says why",
		units: []placed{
			{unit("BLS", ladA, dispatch.BLS), at(centreA, 500, 0)},
			{unit("ALS", ladA, dispatch.ALS), at(centreA, -600, 0)},
		},
		call: centreA, priority: 1, category: dispatch.CatChestPain, by: dispatcherOf(ladA),
		wantZone: geo.Urban, wantRadius: 5000, want: []string{"ALS", "BLS"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			if !hasReason(recs.Candidates[0], "ALS crew") || !hasReason(recs.Candidates[1], "BLS only: an ALS unit is 0.6 km away") {
				t.Errorf("reasons %q, %q", recs.Candidates[0].Reasons, recs.Candidates[1].Reasons)
			}
		},
	}, {
		name: "priority 2: capability does not reorder",
		units: []placed{
			{unit("BLS", ladA, dispatch.BLS), at(centreA, 500, 0)},
			{unit("ALS", ladA, dispatch.ALS), at(centreA, -600, 0)},
		},
		call: centreA, priority: 2, category: dispatch.CatChestPain, by: dispatcherOf(ladA),
		wantZone: geo.Urban, wantRadius: 5000, want: []string{"BLS", "ALS"},
	}, {
		name: "neonatal: the unit with an incubator first, within the radius",
		units: []placed{
			{unit("NEAR", ladA, dispatch.ALS), at(centreA, 300, 0)},
			{unit("INC", ladA, dispatch.BLS, dispatch.NeoCare), at(centreA, 0, 2500)},
		},
		call: centreA, priority: 2, category: dispatch.CatNeonatal, by: dispatcherOf(ladA),
		wantZone: geo.Urban, wantRadius: 5000, want: []string{"INC", "NEAR"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			if !hasReason(recs.Candidates[0], "carries a transport incubator") || !hasReason(recs.Candidates[1], "no transport incubator: a unit with a transport incubator is 2.5 km away") {
				t.Errorf("reasons %q, %q", recs.Candidates[0].Reasons, recs.Candidates[1].Reasons)
			}
		},
	}, {
		name: "priority 1 with no ALS unit at home within 5 km: the ladder climbs to the neighbour's ALS unit",
		units: []placed{
			{unit("A-BLS", ladA), at(border, -1000, 0)},
			{unit("B-ALS", ladB, dispatch.ALS), at(border, 8000, 0)},
			{unit("A-ALS", ladA, dispatch.ALS), at(border, -25000, 0)},
		},
		call: border, priority: 1, category: dispatch.CatChestPain, by: dispatcherOf(ladA),
		wantZone: geo.Rural, wantRadius: 20000, want: []string{"B-ALS", "A-BLS", "A-ALS"},
		check: func(t *testing.T, recs dispatch.Recommendations) {
			if c := recs.Candidates[0]; c.Step != dispatch.StepNeighbour || !hasReason(c, "no ALS unit of A free within 20 km") {
				t.Errorf("candidate %+v", c)
			}
			if c := recs.Candidates[1]; c.Step != dispatch.StepOwn || !hasReason(c, "BLS only: an ALS unit is 8.0 km away") {
				t.Errorf("candidate %+v", c)
			}
		},
	}, {
		name: "the best ETA wins over the nearest: a unit on the fast road outside town",
		units: []placed{
			{unit("TOWN", ladA), at(centreA, 2900, 0)},  // urban all the way: 2.9 km at 30 km/h
			{unit("ROAD", ladA), at(centreA, 0, -3400)}, // rural half of the way: quicker
		},
		call: centreA, priority: 2, category: dispatch.CatTrauma, by: dispatcherOf(ladA),
		wantZone: geo.Urban, wantRadius: 5000, want: []string{"ROAD", "TOWN"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var units []dispatch.Unit
			for _, u := range tt.units {
				units = append(units, u.unit)
			}
			f := ladderFixture(t, units, nil)
			for _, u := range tt.units {
				if u.unit.ID == "OLD" {
					f.move(t, u.unit.ID, u.p)
				}
			}
			f.clock.Add(2 * time.Minute)
			for _, u := range tt.units {
				if u.unit.ID != "OLD" {
					f.move(t, u.unit.ID, u.p)
				}
			}
			for _, id := range tt.offline {
				_ = f.svc.Presence(context.Background(), telemetry.Presence{Unit: id, Online: false, Time: f.clock.Now()})
			}
			inc, recs := f.callAt(t, tt.by, tt.call, tt.priority, tt.category)
			if inc.Zone != tt.wantZone || recs.RadiusM != tt.wantRadius {
				t.Errorf("zone %s radius %v, want %s %v", inc.Zone, recs.RadiusM, tt.wantZone, tt.wantRadius)
			}
			if got := unitsOf(recs); !slices.Equal(got, tt.want) {
				t.Fatalf("candidates %v, want %v\n%+v", got, tt.want, recs.Candidates)
			}
			for i, c := range recs.Candidates {
				if c.Rank != i+1 {
					t.Errorf("candidate %d has rank %d", i, c.Rank)
				}
			}
			if tt.check != nil {
				tt.check(t, recs)
			}
		})
	}
}

// TestLadderListsFurtherRungsOnlyWhenItClimbs: a call the own county can
// serve lists only its own units; one it cannot lists at most three of
// each further rung, and the lists are bounded.
func TestLadderListsFurtherRungsOnlyWhenItClimbs(t *testing.T) {
	var units []dispatch.Unit
	for i := range 8 {
		units = append(units, unit(fmt.Sprintf("A%d", i), ladA), unit(fmt.Sprintf("B%d", i), ladB), unit(fmt.Sprintf("C%d", i), ladC))
	}
	f := ladderFixture(t, units, nil)
	call := orb.Point{105.19, 29.2}
	for i := range 8 {
		f.move(t, fmt.Sprintf("A%d", i), at(call, -1000-float64(i)*300, 0))
		f.move(t, fmt.Sprintf("B%d", i), at(call, 2000+float64(i)*300, 0))
		f.move(t, fmt.Sprintf("C%d", i), at(boxC.Max, -1000, -20000+float64(i)*300))
	}
	_, recs := f.callAt(t, dispatcherOf(ladA), call, 2, dispatch.CatTrauma)
	if got := unitsOf(recs); !slices.Equal(got, []string{"A0", "A1", "A2", "A3", "A4"}) {
		t.Fatalf("served at home: candidates %v, want the five nearest own units", got)
	}
	for i := range 8 {
		f.pressNow(t, fmt.Sprintf("A%d", i), "out_of_service")
	}
	_, recs = f.callAt(t, dispatcherOf(ladA), call, 2, dispatch.CatTrauma)
	if got := unitsOf(recs); !slices.Equal(got, []string{"B0", "B1", "B2", "C0", "C1", "C2"}) {
		t.Fatalf("all own units out: candidates %v, want three neighbours, then three of the city", got)
	}
	if len(recs.Excluded) != 8 {
		t.Errorf("excluded %d units, want the 8 own ones out of service", len(recs.Excluded))
	}
}

// countingStore counts the reads of assignments, which a recommendation
// must not make.
type countingStore struct {
	dispatch.Store
	reads atomic.Int64
}

func (c *countingStore) Assignments(ctx context.Context, incident string) ([]*dispatch.Assignment, error) {
	c.reads.Add(1)
	return c.Store.Assignments(ctx, incident)
}

func (c *countingStore) Assignment(ctx context.Context, id string) (*dispatch.Assignment, error) {
	c.reads.Add(1)
	return c.Store.Assignment(ctx, id)
}

// TestRefusalsFromMemory: the units that declined or abandoned a call are
// known without reading the record, and again after a restart.
func TestRefusalsFromMemory(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: memory.NewStore()}
	tracks := memory.NewTracks(10)
	units := []dispatch.Unit{unit("U1", ladA), unit("U2", ladA), unit("U3", ladA)}
	f := ladderFixture(t, units, func(c *dispatch.Config) { c.Store, c.Tracks = store, tracks })
	f.move(t, "U1", at(centreA, 100, 0))
	f.move(t, "U2", at(centreA, 200, 0))
	f.move(t, "U3", at(centreA, 300, 0))
	inc, _ := f.callAt(t, dispatch.System, centreA, 2, dispatch.CatTrauma)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Ack(ctx, telemetry.Ack{Unit: "U1", Assignment: a.ID, Accepted: false, Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U2"); err != nil {
		t.Fatal(err)
	}
	f.pressNow(t, "U2", "en_route")
	f.clock.Add(time.Second) // a later press
	f.pressNow(t, "U2", "out_of_service")

	check := func(t *testing.T, svc *dispatch.Service) {
		before := store.reads.Load()
		recs, err := svc.Recommend(ctx, dispatch.System, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := store.reads.Load() - before; n != 0 {
			t.Errorf("the recommendation read assignments from the record %d times", n)
		}
		if got := unitsOf(recs); !slices.Equal(got, []string{"U3"}) {
			t.Errorf("candidates %v, want U3 only (U1 declined, U2 aborted)", got)
		}
		why := map[string]string{}
		for _, e := range recs.Excluded {
			why[e.Unit] = e.Reason
		}
		if !strings.HasPrefix(why["U1"], "declined this call") || !strings.HasPrefix(why["U2"], "out_of_service") {
			t.Errorf("exclusions %v", why)
		}
	}
	t.Run("live", func(t *testing.T) { check(t, f.svc) })
	f.clock.Add(time.Second)
	f.pressNow(t, "U2", "available")
	t.Run("after a restart", func(t *testing.T) {
		svc, err := dispatch.NewService(ctx, dispatch.Config{Area: f.area, Store: store, Tracks: tracks, Events: dispatch.NewBus(), Now: f.clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range units {
			p := at(centreA, 100*float64(i+1), 0)
			fix := telemetry.Fix{Unit: u.ID, Seq: 100, Time: f.clock.Now(), Lat: p.Lat(), Lon: p.Lon(), Received: f.clock.Now()}
			if err := svc.Positions(ctx, telemetry.Positions{Unit: u.ID, Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
				t.Fatal(err)
			}
		}
		before := store.reads.Load()
		recs, err := svc.Recommend(ctx, dispatch.System, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := store.reads.Load() - before; n != 0 {
			t.Errorf("the recommendation read assignments %d times", n)
		}
		if got := unitsOf(recs); !slices.Equal(got, []string{"U3"}) {
			t.Errorf("candidates %v after a restart, want U3 only", got)
		}
	})
}

// TestRadiusPolicyFromArea: a jurisdiction's radii and an urban zone's own
// radius set the ladder; the incident and the ring show them.
func TestRadiusPolicyFromArea(t *testing.T) {
	units := []dispatch.Unit{unit("U", ladA)}
	rural := orb.Point{104.9, 29.32}
	tests := []struct {
		name       string
		change     func(*dispatch.Area)
		call, u    orb.Point
		wantFirst  float64 // the incident's radius_m
		wantRadius float64 // the radius used
		wantWithin bool
	}{
		{"default urban", nil, centreA, at(centreA, 4500, 0), 5000, 5000, true},
		{"the zone's own radius", func(a *dispatch.Area) { a.Zones[0].RadiusM = 3000 }, centreA, at(centreA, 4500, 0), 3000, 3000, false},
		{"the county's urban radius", func(a *dispatch.Area) { a.Jurisdictions[1].Radii.Urban = 4000 }, centreA, at(centreA, 4500, 0), 4000, 4000, false},
		{"the city's radius is inherited", func(a *dispatch.Area) { a.Jurisdictions[0].Radii.Urban = 6000 }, centreA, at(centreA, 5500, 0), 6000, 6000, true},
		{"the zone's radius before the county's", func(a *dispatch.Area) {
			a.Zones[0].RadiusM, a.Jurisdictions[1].Radii.Urban = 6000, 4000
		}, centreA, at(centreA, 5500, 0), 6000, 6000, true},
		{"the county's rural ladder", func(a *dispatch.Area) {
			a.Jurisdictions[1].Radii = geo.RadiusPolicy{Rural: 8000, RuralMax: 15000}
		}, rural, at(rural, 14000, 0), 8000, 15000, true},
		{"beyond the county's widest rural radius", func(a *dispatch.Area) {
			a.Jurisdictions[1].Radii = geo.RadiusPolicy{Rural: 8000, RuralMax: 12000}
		}, rural, at(rural, 14000, 0), 8000, 12000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fixtureOn(t, cityArea(t, units, tt.change), nil)
			f.move(t, "U", tt.u)
			inc, recs := f.callAt(t, dispatch.System, tt.call, 2, dispatch.CatTrauma)
			if inc.RadiusM != tt.wantFirst || recs.RadiusM != tt.wantRadius {
				t.Errorf("incident radius %v, used %v; want %v, %v", inc.RadiusM, recs.RadiusM, tt.wantFirst, tt.wantRadius)
			}
			if len(recs.Candidates) != 1 || recs.Candidates[0].WithinRadius != tt.wantWithin {
				t.Errorf("candidates %+v, want one within the radius: %v", recs.Candidates, tt.wantWithin)
			}
		})
	}
}

// TestAreaNeighbours: counties of one city touching or within the
// tolerance are neighbours; others, and other cities' counties, are not.
func TestAreaNeighbours(t *testing.T) {
	a := cityArea(t, nil, nil)
	want := map[string][]string{ladA: {ladB}, ladB: {ladA}}
	if got := a.Neighbours(dispatch.NeighbourTolerance); !mapsEqual(got, want) {
		t.Errorf("Neighbours = %v, want %v", got, want)
	}
	// Move B 50 m east: still neighbours at 100 m, not at 10 m.
	gap := at(boxB.Min, 50, 0)[0] - boxB.Min[0]
	a.Jurisdictions[2].Region = dispatchtest.Region(t, ladB, orb.Bound{Min: orb.Point{boxB.Min[0] + gap, boxB.Min[1]}, Max: orb.Point{boxB.Max[0] + gap, boxB.Max[1]}}.ToPolygon())
	if got := a.Neighbours(100); !mapsEqual(got, want) {
		t.Errorf("50 m apart, tolerance 100 m: %v, want %v", got, want)
	}
	if got := a.Neighbours(10); len(got) != 0 {
		t.Errorf("50 m apart, tolerance 10 m: %v, want none", got)
	}
	// The demo's counties, from their real boundaries (docs/AREA.md).
	if got := geojson.Demo().Neighbours(dispatch.NeighbourTolerance)["510322"]; !slices.Equal(got, []string{"510304", "510311"}) {
		t.Errorf("demo: neighbours of 510322 %v, want 510304 and 510311", got)
	}
	// A county inside another (an enclave) neighbours it.
	a.Jurisdictions[3].Region = dispatchtest.Region(t, ladC, dispatchtest.Square(orb.Point{104.9, 29.3}, 0.01))
	if got := a.Neighbours(10)[ladC]; !slices.Equal(got, []string{ladA}) {
		t.Errorf("enclave: neighbours of C %v, want A", got)
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestAreaValidateRadii: radii must be positive, bounded and ordered.
func TestAreaValidateRadii(t *testing.T) {
	tests := []struct {
		name   string
		change func(*dispatch.Area)
	}{
		{"negative zone radius", func(a *dispatch.Area) { a.Zones[0].RadiusM = -1 }},
		{"zone radius too large", func(a *dispatch.Area) { a.Zones[0].RadiusM = geo.MaxRadius + 1 }},
		{"rural above rural max", func(a *dispatch.Area) { a.Jurisdictions[1].Radii = geo.RadiusPolicy{Rural: 20000, RuralMax: 10000} }},
		{"negative urban", func(a *dispatch.Area) { a.Jurisdictions[0].Radii.Urban = -5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := cityArea(t, nil, nil)
			tt.change(a)
			if err := a.Validate(); dispatch.ErrorCode(err) != dispatch.CodeInvalid {
				t.Fatalf("Validate = %v, want invalid", err)
			}
		})
	}
}

// bumpy is an Estimator whose speed changes from place to place and zone
// to zone at random: nearer is often not sooner.
type bumpy struct {
	seed             maphash.Seed
	minPace, maxPace float64 // seconds per crow-flies metre
	urban, rural     float64 // zone factors, at least 1
}

func (b bumpy) Estimate(from, to orb.Point, fz, tz geo.Zone) geo.Route {
	crow := geo.Distance(from, to)
	cell := [2]int64{int64(math.Floor(from[0] * 200)), int64(math.Floor(from[1] * 200))}
	h := maphash.Comparable(b.seed, cell)
	pace := b.minPace + (b.maxPace-b.minPace)*float64(h>>11)/float64(1<<53)
	for _, z := range []geo.Zone{fz, tz} {
		if z == geo.Urban {
			pace *= b.urban
		} else {
			pace *= b.rural
		}
	}
	return geo.Route{Metres: crow * 1.3, Duration: time.Duration(crow * pace * float64(time.Second))}
}

func (b bumpy) MinDuration(crow float64) time.Duration {
	return max(0, time.Duration(crow*b.minPace*float64(time.Second))-time.Microsecond)
}

// TestRankMatchesBruteForce is the property that makes the search exact:
// over random fleets (units of every county, placed anywhere, some busy,
// offline, stale or having refused the call, with random capabilities)
// and estimators whose speed varies at random by place and zone, the
// ranking equals a brute-force ranking of every unit by the same rules.
//
// It replaces an older property that the first candidate is the nearest
// by straight line, which no longer holds: candidates are ranked by ETA,
// and by what the call needs.
func TestRankMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	caps := [][]string{nil, {dispatch.BLS}, {dispatch.ALS}, {dispatch.ALS, dispatch.NeoCare}, {dispatch.BLS, dispatch.NeoCare}}
	jurs := []string{ladA, ladA, ladA, ladB, ladB, ladC, ladD, ladCity}
	for round := range 300 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			var units []dispatch.Unit
			n := 5 + rng.IntN(60)
			if rng.IntN(4) == 0 {
				n = 150 + rng.IntN(150)
			}
			for i := range n {
				units = append(units, unit(fmt.Sprintf("U%02d", i), jurs[rng.IntN(len(jurs))], caps[rng.IntN(len(caps))]...))
			}
			b := bumpy{seed: maphash.MakeSeed(), minPace: 0.02 + rng.Float64()*0.05, urban: 1 + rng.Float64(), rural: 1 + rng.Float64()}
			b.maxPace = b.minPace * (1 + 3*rng.Float64())
			var est geo.Estimator = b
			if rng.IntN(3) == 0 {
				est = geo.Detour{Urban: geo.Profile{RoadFactor: 1 + rng.Float64(), SpeedKmh: 10 + 80*rng.Float64()}, Rural: geo.Profile{RoadFactor: 1 + rng.Float64(), SpeedKmh: 10 + 80*rng.Float64()}}
			}
			top := []int{1, 2, 5, 8}[rng.IntN(4)]
			f := ladderFixture(t, units, func(c *dispatch.Config) { c.ETA, c.Candidates = est, top })
			span := orb.Bound{Min: orb.Point{104.35, 28.95}, Max: orb.Point{105.95, 29.45}}
			if rng.IntN(2) == 0 { // a dense fleet near A's town
				span = orb.Bound{Min: orb.Point{104.9, 29.1}, Max: orb.Point{105.3, 29.3}}
			}
			randomPoint := func(b orb.Bound) orb.Point {
				return orb.Point{b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1])}
			}
			for _, u := range units {
				if rng.IntN(12) > 0 {
					f.move(t, u.ID, randomPoint(span))
				}
			}
			f.clock.Add(60 * time.Second)
			for _, u := range units {
				switch rng.IntN(12) {
				case 0: // stale by the time of the call
				case 1:
					_ = f.svc.Presence(context.Background(), telemetry.Presence{Unit: u.ID, Online: false, Time: f.clock.Now()})
				case 2:
					f.pressNow(t, u.ID, "out_of_service")
				default:
					if p, ok := f.position(u.ID); ok && rng.IntN(3) > 0 {
						f.move(t, u.ID, p)
					}
				}
			}
			f.clock.Add(40 * time.Second)

			home := []orb.Point{randomPoint(boxA), randomPoint(boxA), randomPoint(boxB), at(centreA, rng.Float64()*6000-3000, rng.Float64()*6000-3000)}[rng.IntN(4)]
			cat := []dispatch.Category{dispatch.CatChestPain, dispatch.CatNeonatal, dispatch.CatTrauma, dispatch.CatOther}[rng.IntN(4)]
			by := []dispatch.Principal{dispatch.System, cityUser(), dispatcherOf(ladA), dispatcherOf(ladB)}[rng.IntN(4)]
			inc, _ := f.callAt(t, dispatch.System, home, dispatch.Priority(1+rng.IntN(4)), cat)
			if !by.Sees(f.area, inc.Jurisdiction) {
				by = dispatcherOf(inc.Jurisdiction)
			}
			refused := map[string]bool{}
			for range rng.IntN(3) {
				u := units[rng.IntN(len(units))].ID
				if st := f.status(t, u); st.Status != dispatch.Available {
					continue
				}
				a, err := f.svc.Assign(context.Background(), dispatch.System, inc.ID, u)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.svc.Ack(context.Background(), telemetry.Ack{Unit: u, Assignment: a.ID, Accepted: false, Time: f.clock.Now()}); err != nil {
					t.Fatal(err)
				}
				refused[u] = true
			}
			got, err := f.svc.Recommend(context.Background(), by, inc.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteRank(t, f, est, inc, by, top, refused)
			if got.RadiusM != want.RadiusM {
				t.Errorf("radius used %v, brute force %v", got.RadiusM, want.RadiusM)
			}
			if len(got.Candidates) != len(want.Candidates) {
				t.Fatalf("candidates\n got %v\nwant %v", summary(got), summary(want))
			}
			for i, c := range got.Candidates {
				w := want.Candidates[i]
				if c.Unit != w.Unit || c.Step != w.Step || c.WithinRadius != w.WithinRadius || c.NeedsConsent != w.NeedsConsent || c.Jurisdiction != w.Jurisdiction || c.ETAS != w.ETAS {
					t.Fatalf("candidate %d\n got %v\nwant %v", i, summary(got), summary(want))
				}
			}
		})
	}
}

// position returns the unit's live position.
func (f *fixture) position(unit string) (orb.Point, bool) {
	st, err := f.svc.Unit(dispatch.System, unit)
	if err != nil || st.Position == nil {
		return orb.Point{}, false
	}
	return orb.Point{st.Position.Lon, st.Position.Lat}, true
}

func summary(recs dispatch.Recommendations) string {
	var b strings.Builder
	fmt.Fprintf(&b, "radius %v:", recs.RadiusM)
	for _, c := range recs.Candidates {
		fmt.Fprintf(&b, " %s/%s/%s/in=%v/consent=%v/%.0fm/%.0fs", c.Unit, c.Jurisdiction, c.Step, c.WithinRadius, c.NeedsConsent, c.DistanceM, c.ETAS)
	}
	return b.String()
}

// bruteRank ranks every unit of the picture by the rules of the ladder,
// looking at all of them: the oracle of TestRankMatchesBruteForce and the
// baseline of BenchmarkRecommend.
func bruteRank(tb testing.TB, f *fixture, est geo.Estimator, inc *dispatch.Incident, by dispatch.Principal, top int, refused map[string]bool) dispatch.Recommendations {
	tb.Helper()
	units, err := f.svc.Units(dispatch.System, "")
	if err != nil {
		tb.Fatal(err)
	}
	return bruteForce(f.area, f.area.Neighbours(dispatch.NeighbourTolerance), units, est, geo.DefaultRadii, inc, by, top, refused)
}

// bruteForce is bruteRank on a list of units, with adj the area's
// neighbouring jurisdictions.
func bruteForce(a *dispatch.Area, adj map[string][]string, units []dispatch.UnitState, est geo.Estimator, radii geo.RadiusPolicy, inc *dispatch.Incident, by dispatch.Principal, top int, refused map[string]bool) dispatch.Recommendations {
	loc := orb.Point{inc.Location.Lon, inc.Location.Lat}
	first, widest := radii.Ladder(inc.Zone)
	home, _ := a.Jurisdiction(inc.Jurisdiction)
	neighbours := adj[home.ID]
	var needs []string
	has := func(caps []string, c string) bool { return slices.Contains(caps, c) }
	fleetHas := func(c string) bool {
		return slices.ContainsFunc(a.Units, func(u dispatch.Unit) bool { return has(u.Capabilities, c) })
	}
	if inc.Priority == 1 && fleetHas(dispatch.ALS) {
		needs = append(needs, dispatch.ALS)
	}
	if inc.Category == dispatch.CatNeonatal && fleetHas(dispatch.NeoCare) {
		needs = append(needs, dispatch.NeoCare)
	}
	zoneAt := func(p orb.Point) geo.Zone {
		for _, z := range a.Zones {
			if z.Region.Contains(p) {
				return geo.Urban
			}
		}
		return geo.Rural
	}
	type cand struct {
		u          dispatch.UnitState
		bucket     int // 0 own, 1 neighbour, 2 city
		d          float64
		eta        time.Duration
		able       bool
		tier, step int
		route      geo.Route
	}
	var all []*cand
	for _, u := range units {
		if u.Status != dispatch.Available || !u.Online || u.Stale || refused[u.ID] {
			continue
		}
		c := &cand{u: u}
		switch {
		case a.Within(u.Jurisdiction, home.ID):
			c.bucket = 0
		case home.Parent != "" && a.Within(u.Jurisdiction, home.Parent):
			c.bucket = 2
			for id := u.Jurisdiction; id != home.Parent; {
				j, _ := a.Jurisdiction(id)
				if j.Parent == home.Parent && slices.Contains(neighbours, id) {
					c.bucket = 1
				}
				id = j.Parent
			}
		default:
			continue
		}
		p := orb.Point{u.Position.Lon, u.Position.Lat}
		c.d = geo.Distance(loc, p)
		c.route = est.Estimate(p, loc, zoneAt(p), inc.Zone)
		c.eta = c.route.Duration
		c.able = !slices.ContainsFunc(needs, func(n string) bool { return !has(u.Capabilities, n) })
		all = append(all, c)
	}
	waived := len(needs) > 0 && !slices.ContainsFunc(all, func(c *cand) bool { return c.able && c.d <= widest })
	suits := func(c *cand) bool { return c.able || waived }
	exists := func(bucket int, r float64) bool {
		return slices.ContainsFunc(all, func(c *cand) bool { return c.bucket == bucket && c.d <= r && suits(c) })
	}
	stop := 4
	switch {
	case exists(0, first):
		stop = 0
	case exists(0, widest):
		stop = 1
	case exists(1, widest):
		stop = 2
	case exists(2, widest):
		stop = 3
	}
	radius := widest
	if stop == 0 {
		radius = first
	}
	for _, c := range all {
		switch {
		case c.d > radius:
			c.tier = 2
		case suits(c):
			c.tier = 0
		default:
			c.tier = 1
		}
		c.step = c.bucket + 1
		if c.bucket == 0 && c.d <= first {
			c.step = 0
		}
	}
	byKey := func(x, y *cand) int {
		return cmp.Or(cmp.Compare(x.tier, y.tier), cmp.Compare(x.step, y.step), cmp.Compare(x.eta, y.eta), cmp.Compare(x.d, y.d), cmp.Compare(x.u.ID, y.u.ID))
	}
	var picked []*cand
	for bucket, k := range []int{top, 3, 3} {
		if bucket > 0 && stop == 0 {
			break
		}
		var in []*cand
		for _, c := range all {
			if c.bucket == bucket {
				in = append(in, c)
			}
		}
		slices.SortFunc(in, byKey)
		picked = append(picked, in[:min(k, len(in))]...)
	}
	slices.SortFunc(picked, func(x, y *cand) int {
		px, py := x.step > stop, y.step > stop
		switch {
		case px != py && px:
			return 1
		case px != py:
			return -1
		case px:
			return cmp.Or(cmp.Compare(x.step, y.step), cmp.Compare(x.tier, y.tier), cmp.Compare(x.eta, y.eta), cmp.Compare(x.d, y.d), cmp.Compare(x.u.ID, y.u.ID))
		}
		return byKey(x, y)
	})
	out := dispatch.Recommendations{Incident: inc.ID, RadiusM: radius}
	steps := []dispatch.Step{dispatch.StepOwn, dispatch.StepOwnWidened, dispatch.StepNeighbour, dispatch.StepCity}
	for i, c := range picked {
		out.Candidates = append(out.Candidates, dispatch.Recommendation{
			Rank: i + 1, Unit: c.u.ID, DistanceM: c.d, RoadM: c.route.Metres, ETAS: c.eta.Seconds(),
			WithinRadius: c.d <= radius, Step: steps[c.step], Jurisdiction: c.u.Jurisdiction,
			NeedsConsent: !by.Sees(a, c.u.Jurisdiction),
		})
	}
	return out
}
