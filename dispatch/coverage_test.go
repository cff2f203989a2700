package dispatch_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// baseRadius is the base service radius the tests expect of a zone.
func baseRadius(_ string, z geo.Zone) float64 { return geo.DefaultRadii.Steps(z)[0] }

// syntheticCounty is a square county of about km2 square kilometres at
// Fushun's latitude, with an urban zone of 6 × 6 km at its centre, a
// neighbouring county east of it and their city; units and stations of
// the county are spread at random (one unit of the neighbour sits on the
// county line: it must not cover the county).
func syntheticCounty(tb testing.TB, km2 float64, units, stations int, rng *rand.Rand) *dispatch.Area {
	tb.Helper()
	return syntheticAt(tb, orb.Point{105.0, 29.2}, km2, units, stations, rng)
}

// syntheticAt is syntheticCounty centred on c.
func syntheticAt(tb testing.TB, c orb.Point, km2 float64, units, stations int, rng *rand.Rand) *dispatch.Area {
	tb.Helper()
	halfLat := math.Sqrt(km2) / 2 / 111.195
	halfLon := halfLat / math.Cos(c.Lat()*math.Pi/180)
	square := func(c orb.Point, hLon, hLat float64) orb.Polygon {
		return orb.Polygon{{{c[0] - hLon, c[1] - hLat}, {c[0] + hLon, c[1] - hLat}, {c[0] + hLon, c[1] + hLat}, {c[0] - hLon, c[1] + hLat}, {c[0] - hLon, c[1] - hLat}}}
	}
	east := orb.Point{c[0] + 2*halfLon, c[1]}
	a := &dispatch.Area{
		Name: "synthetic",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: cityID, Name: "city"},
			{ID: countyID, Name: "county", Parent: cityID, Region: dispatchtest.Region(tb, countyID, square(c, halfLon, halfLat))},
			{ID: "510302", Name: "east", Parent: cityID, Region: dispatchtest.Region(tb, "510302", square(east, halfLon, halfLat))},
		},
		Zones: []dispatch.UrbanZone{{ID: "Z1", Name: "seat", Jurisdiction: countyID, Region: dispatchtest.Region(tb, "Z1", square(c, 3/111.195/math.Cos(c.Lat()*math.Pi/180), 3/111.195))}},
	}
	at := func() orb.Point {
		return orb.Point{c[0] + (rng.Float64()*2-1)*halfLon, c[1] + (rng.Float64()*2-1)*halfLat}
	}
	for i := range stations {
		a.Stations = append(a.Stations, dispatch.Station{ID: fmt.Sprintf("S%02d", i+1), Name: "station", Jurisdiction: countyID, Location: at()})
	}
	a.Stations = append(a.Stations, dispatch.Station{ID: "E1", Name: "east", Jurisdiction: "510302", Location: orb.Point{east[0] - halfLon, east[1]}})
	for i := range units {
		a.Units = append(a.Units, dispatch.Unit{ID: fmt.Sprintf("U%02d", i+1), Callsign: "c", Jurisdiction: countyID, Station: a.Stations[i%stations].ID})
	}
	a.Units = append(a.Units, dispatch.Unit{ID: "E01", Jurisdiction: "510302", Station: "E1"})
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	return a
}

// fleet is a picture of area's units and what the test did to them.
type fleet struct {
	area *dispatch.Area
	pic  *dispatch.LocalPicture
	at   map[string]orb.Point
	on   map[string]bool
}

func newFleet(area *dispatch.Area) *fleet {
	return &fleet{area: area, pic: dispatch.NewLocalPicture(area.Units, nil), at: map[string]orb.Point{}, on: map[string]bool{}}
}

// set puts unit id at p, available (on) or busy.
func (f *fleet) set(id string, p orb.Point, on bool) {
	f.at[id], f.on[id] = p, on
	f.pic.Update(id, func(st *dispatch.UnitState) bool {
		st.Position = &dispatch.Position{Lat: p.Lat(), Lon: p.Lon()}
		st.Online, st.Status = true, dispatch.Available
		if !on {
			st.Status = dispatch.EnRoute
		}
		return true
	})
}

// counts is the tests' notion of available: available and online.
func counts(st *dispatch.UnitState) bool { return st.Status == dispatch.Available && st.Online }

// brute counts, for every cell, the units at anchors that cover it, by
// looking at every pair.
func brute(area *dispatch.Area, cells []dispatch.CoverCell, anchors map[string]orb.Point) []int {
	type unit struct {
		jur string
		at  orb.Point
	}
	var us []unit
	for _, u := range area.Units {
		if p, ok := anchors[u.ID]; ok {
			us = append(us, unit{u.Jurisdiction, p})
		}
	}
	within := map[[2]string]bool{}
	n := make([]int, len(cells))
	for i, c := range cells {
		for _, u := range us {
			k := [2]string{u.jur, c.Jurisdiction}
			w, ok := within[k]
			if !ok {
				w = area.Within(u.jur, c.Jurisdiction)
				within[k] = w
			}
			if w && geo.Distance(u.at, c.Centre) <= c.Radius {
				n[i]++
			}
		}
	}
	return n
}

func coveredIn(area *dispatch.Area, cells []dispatch.CoverCell, n []int, scope string) (covered, all int) {
	for i, c := range cells {
		if scope == "" || area.Within(c.Jurisdiction, scope) {
			all++
			if n[i] > 0 {
				covered++
			}
		}
	}
	return covered, all
}

// TestCoverageGrid: every grid square of the demo area (Zigong, real
// boundaries) holds a cell exactly when Area.Locate finds its centre in
// a jurisdiction; each cell is that jurisdiction's, with the base radius
// of the zone Locate gives. (Every fifth square and cell is checked:
// Locate is slow.)
func TestCoverageGrid(t *testing.T) {
	area := geojson.Demo()
	c := dispatch.NewCoverage(area, dispatch.CoverageCellMetres, baseRadius)
	bad, i := 0, 0
	c.SquaresForTest(func(p orb.Point, cell bool) {
		if i++; i%5 != 0 {
			return
		}
		if _, _, ok := area.Locate(p); ok != cell {
			bad++
			if bad < 5 {
				t.Errorf("square at %v: cell %v, Locate %v", p, cell, ok)
			}
		}
	})
	per := map[string]int{}
	for i, cell := range c.CellsForTest() {
		per[cell.Jurisdiction]++
		if i%5 != 0 {
			continue
		}
		j, z, _ := area.Locate(cell.Centre)
		if j.ID != cell.Jurisdiction || cell.Radius != geo.DefaultRadii.Steps(z)[0] {
			t.Fatalf("cell at %v: %s radius %.0f; Locate says %s %s", cell.Centre, cell.Jurisdiction, cell.Radius, j.ID, z)
		}
	}
	if bad > 0 {
		t.Fatalf("%d squares disagree with Locate", bad)
	}
	if per["510322"] < 4000 || per["510322"] > 7000 {
		t.Fatalf("Fushun County has %d cells of 0.25 km² (want its ~1,300 km²)", per["510322"])
	}
	t.Logf("cells per jurisdiction (0.25 km² each): %v", per)
}

// TestCoverageIncremental moves, frees and busies units at random: after
// every Sync the counts are those of a brute force over where each unit
// was counted, each counted unit is counted within CoverMoveMetres of
// where it is, exactly the available units are counted, and a full
// Recompute agrees with a brute force over where the units are.
func TestCoverageIncremental(t *testing.T) {
	tests := []struct {
		name   string
		centre orb.Point
		radius func(string, geo.Zone) float64
	}{
		{"Fushun's latitude, the default radii", orb.Point{105.0, 29.2}, baseRadius},
		{"far north, 15 km", orb.Point{30.3, 59.5}, func(string, geo.Zone) float64 { return 15000 }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testIncremental(t, tt.centre, tt.radius, uint64(i)) })
	}
}

func testIncremental(t *testing.T, centre orb.Point, radius func(string, geo.Zone) float64, seed uint64) {
	rng := rand.New(rand.NewPCG(3, seed))
	area := syntheticAt(t, centre, 500, 10, 6, rng)
	f := newFleet(area)
	c := dispatch.NewCoverage(area, dispatch.CoverageCellMetres, radius)
	j, _ := area.Jurisdiction(countyID)
	b := j.Region.Bound()
	for _, u := range area.Units {
		f.set(u.ID, orb.Point{b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1])}, rng.IntN(4) > 0)
	}
	f.set("E01", orb.Point{b.Max[0] + 0.001, b.Center()[1]}, true) // on the county line, of the other county
	for step := range 120 {
		u := area.Units[rng.IntN(len(area.Units))].ID
		p := f.at[u]
		switch rng.IntN(4) {
		case 0:
			f.set(u, p, !f.on[u])
		case 1: // a short drive: under the threshold at first
			f.set(u, orb.Point{p[0] + (rng.Float64()*2-1)*0.0015, p[1] + (rng.Float64()*2-1)*0.0015}, f.on[u])
		default:
			f.set(u, orb.Point{p[0] + (rng.Float64()*2-1)*0.05, p[1] + (rng.Float64()*2-1)*0.05}, f.on[u])
		}
		if step%4 != 0 {
			continue
		}
		c.Sync(f.pic, counts)
		anchors := c.AnchorsForTest()
		for id, on := range f.on {
			a, counted := anchors[id]
			if counted != on {
				t.Fatalf("step %d: unit %s counted %v, available %v", step, id, counted, on)
			}
			if on && geo.Distance(a, f.at[id]) >= dispatch.CoverMoveMetres {
				t.Fatalf("step %d: unit %s counted %.0f m from where it is", step, id, geo.Distance(a, f.at[id]))
			}
		}
		cells := c.CellsForTest()
		want := brute(area, cells, anchors)
		for i := range cells {
			if cells[i].N != want[i] {
				t.Fatalf("step %d: cell %d at %v counts %d units, brute force %d", step, i, cells[i].Centre, cells[i].N, want[i])
			}
		}
	}
	c.Recompute(f.pic, counts)
	now := map[string]orb.Point{}
	for id, on := range f.on {
		if on {
			now[id] = f.at[id]
		}
	}
	cells := c.CellsForTest()
	want := brute(area, cells, now)
	covered, all := coveredIn(area, cells, want, countyID)
	if s := c.Share(countyID); s.Covered != covered || s.Cells != all || *s.Share != float64(covered)/float64(all) {
		t.Fatalf("share %+v, brute force %d of %d", s, covered, all)
	}
	for i := range cells {
		if cells[i].N != want[i] {
			t.Fatalf("recomputed cell %d counts %d, brute force %d", i, cells[i].N, want[i])
		}
	}
}

// TestCoverageMoveUp checks the move-up against trying every move of
// every idle unit to every station of its county by brute force.
func TestCoverageMoveUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	scopes := []string{countyID, cityID, ""}
	for round := range 6 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			area := syntheticCounty(t, 300+rng.Float64()*500, 3+rng.IntN(6), 2+rng.IntN(5), rng)
			f := newFleet(area)
			j, _ := area.Jurisdiction(countyID)
			b := j.Region.Bound()
			for _, u := range area.Units {
				f.set(u.ID, orb.Point{b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1])}, rng.IntN(3) > 0)
			}
			c := dispatch.NewCoverage(area, dispatch.CoverageCellMetres, baseRadius)
			c.Sync(f.pic, counts)
			cells := c.CellsForTest()
			anchors := c.AnchorsForTest()
			n := brute(area, cells, anchors)
			want := make([]*dispatch.MoveUp, len(scopes))
			sts := slices.Clone(area.Stations)
			slices.SortFunc(sts, func(a, b dispatch.Station) int { return cmp.Compare(a.ID, b.ID) })
			for _, id := range slices.Sorted(maps.Keys(anchors)) {
				u := unitOf(area, id)
				for _, st := range sts {
					if st.Jurisdiction != u.Jurisdiction || geo.Distance(anchors[id], st.Location) < dispatch.CoverMoveMetres {
						continue
					}
					moved := maps.Clone(anchors)
					moved[id] = st.Location
					m := brute(area, cells, moved)
					for i, scope := range scopes {
						if scope != "" && !area.Within(u.Jurisdiction, scope) {
							continue
						}
						before, all := coveredIn(area, cells, n, scope)
						after, _ := coveredIn(area, cells, m, scope)
						if gain := after - before; gain > 0 && (want[i] == nil || gain > want[i].GainCells) {
							want[i] = &dispatch.MoveUp{Unit: id, ToStation: st.ID, GainCells: gain, ShareAfter: float64(after) / float64(all)}
						}
					}
				}
			}
			for i, scope := range scopes {
				got := c.Report(scope)
				before, all := coveredIn(area, cells, n, scope)
				if got.Covered != before || got.Cells != all {
					t.Fatalf("%q: covered %d of %d, brute force %d of %d", scope, got.Covered, got.Cells, before, all)
				}
				if uncovered := all - before; len(got.Uncovered) != min(uncovered, 5000) || got.Truncated != (uncovered > 5000) {
					t.Fatalf("%q: %d uncovered listed (truncated %v), want %d", scope, len(got.Uncovered), got.Truncated, uncovered)
				}
				switch w := want[i]; {
				case w == nil && got.MoveUp != nil:
					t.Fatalf("%q: move-up %+v, brute force none", scope, got.MoveUp)
				case w == nil:
				case got.MoveUp == nil:
					t.Fatalf("%q: no move-up, brute force %+v", scope, w)
				case got.MoveUp.Unit != w.Unit || got.MoveUp.ToStation != w.ToStation || got.MoveUp.GainCells != w.GainCells ||
					math.Abs(got.MoveUp.ShareAfter-w.ShareAfter) > 1e-12:
					t.Fatalf("%q: move-up %+v, brute force %+v", scope, got.MoveUp, w)
				}
			}
		})
	}
}

func unitOf(a *dispatch.Area, id string) dispatch.Unit {
	for _, u := range a.Units {
		if u.ID == id {
			return u
		}
	}
	return dispatch.Unit{}
}

// TestCoverageService: GET-side coverage through the service follows the
// fleet as a recommendation sees it (busy, offline and stale units cover
// nothing), suggests bringing a far unit back to its station, and is
// scoped by the caller's access.
func TestCoverageService(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	corner := orb.Point{centre[0] + 0.17, centre[1] + 0.17}
	f.move(t, "U01", corner)
	get := func() *dispatch.CoverageReport {
		t.Helper()
		r, err := f.svc.Coverage(ctx, dispatch.System, countyID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := get()
	if r.Units != 1 || r.Covered == 0 || r.Cells < 5000 || *r.Share != float64(r.Covered)/float64(r.Cells) || r.CellM != dispatch.CoverageCellMetres {
		t.Fatalf("one unit in a corner: %+v", r.CoverageShare)
	}
	if r.MoveUp == nil || r.MoveUp.Unit != "U01" || r.MoveUp.ToStation != "S1" || r.MoveUp.GainCells <= 0 || r.MoveUp.ShareAfter <= *r.Share {
		t.Fatalf("move-up %+v, want U01 to S1 for a gain", r.MoveUp)
	}
	inc, _ := f.call(t, corner)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if r := get(); r.Covered != 0 || r.Units != 0 || r.MoveUp != nil || len(r.Uncovered) != min(r.Cells, 5000) || !r.Truncated {
		t.Fatalf("the only unit busy: %+v, move-up %+v", r.CoverageShare, r.MoveUp)
	}
	if _, err := f.svc.CancelAssignment(ctx, dispatch.System, inc.ID, a.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if r := get(); r.Units != 1 || r.Covered == 0 {
		t.Fatalf("the unit free again: %+v", r.CoverageShare)
	}
	if err := f.svc.Presence(ctx, telemetry.Presence{Unit: "U01", Online: false, Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := get(); r.Units != 0 || r.Covered != 0 {
		t.Fatalf("the unit offline: %+v", r.CoverageShare)
	}
	f.move(t, "U01", corner)
	f.clock.Add(2 * time.Minute)
	if r := get(); r.Units != 0 || r.Covered != 0 {
		t.Fatalf("the unit stale: %+v", r.CoverageShare)
	}
	neighbour := dispatch.Principal{Name: "n", Role: dispatch.RoleDispatcher, Jurisdiction: "510302"}
	if _, err := f.svc.Coverage(ctx, neighbour, countyID); dispatch.ErrorCode(err) != dispatch.CodeForbidden {
		t.Fatalf("another county's coverage: %v, want forbidden", err)
	}
	if r, err := f.svc.Coverage(ctx, neighbour, ""); err != nil || r.Jurisdiction != "510302" {
		t.Fatalf("own coverage: %+v, %v", r, err)
	}
}

// benchCoverage is a coverage with its fleet, every unit available.
func benchCoverage(b *testing.B, area *dispatch.Area, place func(u dispatch.Unit) orb.Point) (*dispatch.Coverage, *fleet) {
	b.Helper()
	f := newFleet(area)
	for _, u := range area.Units {
		f.set(u.ID, place(u), true)
	}
	return dispatch.NewCoverage(area, dispatch.CoverageCellMetres, baseRadius), f
}

// BenchmarkCoverage measures a full recompute of the coverage against
// the obvious way (every cell against every unit) in the same run, an
// incremental update for one unit that moved, a Sync where nothing
// changed, a report with its move-up, and laying the grid out.
func BenchmarkCoverage(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	synthetic := syntheticCounty(b, 2000, 30, 15, rng)
	demo := geojson.Demo()
	stations := map[string]orb.Point{}
	for _, s := range demo.Stations {
		stations[s.ID] = s.Location
	}
	setups := []struct {
		name  string
		area  *dispatch.Area
		place func(dispatch.Unit) orb.Point
		scope string
	}{
		{"county=synthetic-2000km2/units=30", synthetic, func(dispatch.Unit) orb.Point {
			j, _ := synthetic.Jurisdiction(countyID)
			bd := j.Region.Bound()
			return orb.Point{bd.Min[0] + rng.Float64()*(bd.Max[0]-bd.Min[0]), bd.Min[1] + rng.Float64()*(bd.Max[1]-bd.Min[1])}
		}, countyID},
		{"county=fushun/units=18", demo, func(u dispatch.Unit) orb.Point {
			p := stations[u.Station]
			return orb.Point{p[0] + (rng.Float64()*2-1)*0.01, p[1] + (rng.Float64()*2-1)*0.01}
		}, "510322"},
	}
	for _, s := range setups {
		c, f := benchCoverage(b, s.area, s.place)
		c.Recompute(f.pic, counts)
		b.Logf("%s: %d cells in scope, %d covered", s.name, c.Share(s.scope).Cells, c.Share(s.scope).Covered)
		b.Run(s.name+"/recompute", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Recompute(f.pic, counts)
			}
		})
		b.Run(s.name+"/baseline=every-pair", func(b *testing.B) {
			cells := c.CellsForTest()
			b.ReportAllocs()
			for b.Loop() {
				_ = brute(s.area, cells, f.at)
			}
		})
		b.Run(s.name+"/sync-one-moved", func(b *testing.B) {
			u := s.area.Units[0].ID
			p := f.at[u]
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				f.set(u, orb.Point{p[0] + float64(i%2)*0.004, p[1]}, true) // ~390 m
				c.Sync(f.pic, counts)
			}
		})
		b.Run(s.name+"/sync-nothing-changed", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Sync(f.pic, counts)
			}
		})
		b.Run(s.name+"/report-with-move-up", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Report(s.scope)
			}
		})
		b.Run(s.name+"/lay-out-the-grid", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dispatch.NewCoverage(s.area, dispatch.CoverageCellMetres, baseRadius)
			}
		})
	}
}
