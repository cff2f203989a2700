package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// The county the benchmarks and most tests use: about 60 km by 60 km
// around Fushun, Sichuan.
var (
	countyCenter  = orb.Point{105.0, 29.15}
	countyHalfLon = 30000 / (EarthRadius * radians * math.Cos(29.15*radians))
	countyHalfLat = 30000 / (EarthRadius * radians)
)

// randomCountyPoint returns a uniformly random point in the county.
func randomCountyPoint(r *rand.Rand) orb.Point {
	return orb.Point{
		countyCenter[0] + (2*r.Float64()-1)*countyHalfLon,
		countyCenter[1] + (2*r.Float64()-1)*countyHalfLat,
	}
}

// implementation names a way to make an empty Index.
type implementation struct {
	name string
	new  func() Index
}

var (
	gridImpl  = implementation{"grid", func() Index { return NewGrid(DefaultCellMetres) }}
	scanImpl  = implementation{"scan", func() Index { return NewScan() }}
	rtreeImpl = implementation{"rtree", func() Index { return newRTree() }}

	// implementations are what the conformance tests run against.
	adaptiveImpl    = implementation{"adaptive", func() Index { return NewAdaptiveGrid() }}
	implementations = []implementation{gridImpl, {"grid/cell=50", func() Index { return NewGrid(50) }}, adaptiveImpl, rtreeImpl, scanImpl}
)

// collect returns everything Nearby reports, checking the order as it goes.
func collect(tb testing.TB, ix Index, center orb.Point, radius float64) []Hit {
	tb.Helper()
	var hits []Hit
	ix.Nearby(center, radius, func(h Hit) bool {
		if n := len(hits); n > 0 && compareHits(hits[n-1], h) >= 0 {
			tb.Errorf("Nearby(%v, %v) reported %+v after %+v", center, radius, h, hits[n-1])
		}
		hits = append(hits, h)
		return true
	})
	return hits
}

func ids(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func TestIndex(t *testing.T) {
	c := countyCenter
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			t.Run("set get delete", func(t *testing.T) {
				ix := impl.new()
				if got := ix.Len(); got != 0 {
					t.Errorf("Len() = %d, want 0", got)
				}
				ix.Set("a", c)
				ix.Set("b", pointNorth(c, 100))
				ix.Set("a", pointNorth(c, 5000)) // a move to another cell
				ix.Set("b", pointNorth(c, 101))  // a move within the cell
				if got := ix.Len(); got != 2 {
					t.Errorf("Len() = %d, want 2", got)
				}
				if got, ok := ix.Get("a"); !ok || got != pointNorth(c, 5000) {
					t.Errorf("Get(a) = %v, %v, want %v, true", got, ok, pointNorth(c, 5000))
				}
				ix.Delete("b")
				ix.Delete("missing")
				if got, ok := ix.Get("b"); ok {
					t.Errorf("Get(b) = %v, true after Delete, want false", got)
				}
				if got := ids(collect(t, ix, c, 1e6)); !slices.Equal(got, []string{"a"}) {
					t.Errorf("Nearby() = %v, want [a]", got)
				}
				ix.Delete("a")
				if got := collect(t, ix, c, 1e6); len(got) != 0 {
					t.Errorf("Nearby() on an empty index = %v, want nothing", got)
				}
			})
			t.Run("order and radius", func(t *testing.T) {
				ix := impl.new()
				ix.Set("far", pointNorth(c, 3000))
				ix.Set("edge", pointNorth(c, 2000))
				ix.Set("near", pointNorth(c, -100))
				ix.Set("tie-b", pointNorth(c, 500))
				ix.Set("tie-a", pointNorth(c, 500))
				ix.Set("here", c)
				got := collect(t, ix, c, Distance(c, pointNorth(c, 2000)))
				want := []string{"here", "near", "tie-a", "tie-b", "edge"}
				if !slices.Equal(ids(got), want) {
					t.Errorf("Nearby() = %v, want %v", ids(got), want)
				}
				for _, h := range got {
					if p, _ := ix.Get(h.ID); h.Point != p || h.Distance != Distance(c, p) {
						t.Errorf("hit %+v, want point %v at %v m", h, p, Distance(c, p))
					}
				}
				if got := ids(collect(t, ix, c, 0)); !slices.Equal(got, []string{"here"}) {
					t.Errorf("Nearby(radius 0) = %v, want [here]", got)
				}
			})
			t.Run("stops when fn says so", func(t *testing.T) {
				ix := impl.new()
				for i := range 50 {
					ix.Set(strconv.Itoa(i), pointNorth(c, float64(i*100)))
				}
				calls := 0
				ix.Nearby(c, 1e5, func(Hit) bool {
					calls++
					return calls < 3
				})
				if calls != 3 {
					t.Errorf("fn called %d times, want 3", calls)
				}
			})
			t.Run("invalid input", func(t *testing.T) {
				ix := impl.new()
				ix.Set("ok", c)
				ix.Set("nan", orb.Point{math.NaN(), 29})
				ix.Set("swapped", orb.Point{29.15, 105.0})
				ix.Set("inf", orb.Point{105, math.Inf(1)})
				if got := ix.Len(); got != 4 {
					t.Errorf("Len() = %d, want 4", got)
				}
				if got, ok := ix.Get("swapped"); !ok || got != (orb.Point{29.15, 105.0}) {
					t.Errorf("Get(swapped) = %v, %v, want it stored", got, ok)
				}
				if got := ids(collect(t, ix, c, math.Inf(1))); !slices.Equal(got, []string{"ok"}) {
					t.Errorf("Nearby(infinite radius) = %v, want [ok]", got)
				}
				for _, q := range []struct {
					center orb.Point
					radius float64
				}{
					{orb.Point{math.NaN(), 29}, 1000},
					{orb.Point{29.15, 105.0}, 1e9},
					{c, -1},
					{c, math.NaN()},
				} {
					if got := collect(t, ix, q.center, q.radius); len(got) != 0 {
						t.Errorf("Nearby(%v, %v) = %v, want nothing", q.center, q.radius, got)
					}
				}
				// An invalid point can become valid again, and vice versa.
				ix.Set("nan", pointNorth(c, 10))
				ix.Set("ok", orb.Point{200, 0})
				if got := ids(collect(t, ix, c, 1000)); !slices.Equal(got, []string{"nan"}) {
					t.Errorf("Nearby() = %v, want [nan]", got)
				}
			})
		})
	}
}

func TestNearest(t *testing.T) {
	c := countyCenter
	ix := NewGrid(DefaultCellMetres)
	for i := range 10 {
		ix.Set("u"+strconv.Itoa(i), pointNorth(c, float64(i+1)*1000))
	}
	even := func(id string) bool { n, _ := strconv.Atoi(id[1:]); return n%2 == 0 }
	tests := []struct {
		name   string
		radius float64
		k      int
		keep   func(string) bool
		want   []string
	}{
		{"first three", 20000, 3, nil, []string{"u0", "u1", "u2"}},
		{"no limit", 4500, 0, nil, []string{"u0", "u1", "u2", "u3"}},
		{"negative k is no limit", 4500, -1, nil, []string{"u0", "u1", "u2", "u3"}},
		{"filtered", 20000, 3, even, []string{"u0", "u2", "u4"}},
		{"filtered to fewer than k by the radius", 5500, 4, even, []string{"u0", "u2", "u4"}},
		{"all rejected", 20000, 3, func(string) bool { return false }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Nearest(ix, c, tt.radius, tt.k, tt.keep)
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("Nearest() = %v, want %v", ids(got), tt.want)
			}
		})
	}
}

// TestGridMatchesScan is the property that makes the Grid and the RTree
// trustworthy: for random data and random queries they report exactly what
// the brute-force Scan reports, in the same order.
func TestGridMatchesScan(t *testing.T) {
	type layout struct {
		name  string
		point func(r *rand.Rand) orb.Point
		query func(r *rand.Rand) orb.Point
	}
	layouts := []layout{
		{"county", randomCountyPoint, randomCountyPoint},
		{"town", func(r *rand.Rand) orb.Point {
			return orb.Point{105.0 + r.NormFloat64()*0.01, 29.15 + r.NormFloat64()*0.01}
		}, randomCountyPoint},
		{"county, queries from afar", randomCountyPoint, func(r *rand.Rand) orb.Point {
			return orb.Point{r.Float64()*360 - 180, r.Float64()*180 - 90}
		}},
		{"pole", func(r *rand.Rand) orb.Point {
			return orb.Point{r.Float64()*360 - 180, 88 + 2*r.Float64()}
		}, func(r *rand.Rand) orb.Point {
			return orb.Point{r.Float64()*360 - 180, 87 + 3*r.Float64()}
		}},
		{"antimeridian", randomAntimeridianPoint, randomAntimeridianPoint},
		{"equator", func(r *rand.Rand) orb.Point {
			return orb.Point{r.Float64() - 0.5, r.Float64() - 0.5}
		}, func(r *rand.Rand) orb.Point {
			return orb.Point{r.Float64() - 0.5, r.Float64() - 0.5}
		}},
	}
	cells := []float64{50, 500, 2000, 5000, 100000}
	radii := []float64{0, 300, 2000, 5000, 10000, 20000, 200000, 2e7, math.Inf(1)}

	r := rand.New(rand.NewPCG(2024, 7))
	queries, hits := 0, 0
	for trial := range 400 {
		lay := layouts[trial%len(layouts)]
		cell := cells[r.IntN(len(cells))]
		t.Run(fmt.Sprintf("%d/%s/cell=%v", trial, lay.name, cell), func(t *testing.T) {
			grid, scan := NewGrid(cell), NewScan()
			others := []struct {
				name string
				ix   Index
			}{{"grid", grid}, {"adaptive", NewAdaptiveGrid()}, {"rtree", newRTree()}}
			set := func(id string, p orb.Point) {
				scan.Set(id, p)
				for _, o := range others {
					o.ix.Set(id, p)
				}
			}

			n := r.IntN(300)
			var pts []orb.Point
			for i := range n {
				var p orb.Point
				switch {
				case i > 0 && r.IntN(10) == 0: // a unit parked on another: a tie
					p = pts[r.IntN(len(pts))]
				case r.IntN(10) == 0: // on a cell corner
					q := lay.point(r)
					p = orb.Point{math.Round(q[0]/grid.deg) * grid.deg, math.Round(q[1]/grid.deg) * grid.deg}
				default:
					p = lay.point(r)
				}
				pts = append(pts, p)
				set("u"+strconv.Itoa(i), p)
			}
			// Moves and deletes, so that the grid's cells are rearranged.
			for range n / 2 {
				id := "u" + strconv.Itoa(r.IntN(n))
				switch r.IntN(4) {
				case 0:
					scan.Delete(id)
					for _, o := range others {
						o.ix.Delete(id)
					}
				case 1:
					set(id, lay.point(r))
				default:
					p, _ := scan.Get(id)
					set(id, orb.Point{p[0] + r.NormFloat64()*0.001, p[1] + r.NormFloat64()*0.001})
				}
			}
			for _, o := range others {
				if o.ix.Len() != scan.Len() {
					t.Fatalf("%s.Len() = %d, want %d", o.name, o.ix.Len(), scan.Len())
				}
			}

			for range 25 {
				center := lay.query(r)
				if n > 0 && r.IntN(5) == 0 {
					center = pts[r.IntN(len(pts))]
				}
				radius := radii[r.IntN(len(radii))]
				k := r.IntN(12) // 0 is no limit
				var keep func(string) bool
				switch r.IntN(3) {
				case 1:
					salt := r.Uint64()
					keep = func(id string) bool { n, _ := strconv.Atoi(id[1:]); return (uint64(n)^salt)%2 == 0 }
				case 2:
					keep = func(id string) bool { return id < "u5" }
				}
				want := Nearest(scan, center, radius, k, keep)
				for _, o := range others {
					got := Nearest(o.ix, center, radius, k, keep)
					if !slices.Equal(got, want) {
						t.Fatalf("Nearest(%s, %v, %v, %d) = %v\nwant (scan) %v", o.name, center, radius, k, got, want)
					}
				}
				queries++
				hits += len(want)
			}
		})
	}
	t.Logf("%d queries, %d hits", queries, hits)
}

// TestGridLargeRadius checks that a query whose radius dwarfs the occupied
// area does not walk every ring out to the radius: with 10 m cells, a walk
// from the far side of the earth would be two million rings per query.
func TestGridLargeRadius(t *testing.T) {
	grid, rt, scan := NewGrid(10), newRTree(), NewScan()
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 2000 {
		p := randomCountyPoint(r)
		grid.Set(strconv.Itoa(i), p)
		rt.Set(strconv.Itoa(i), p)
		scan.Set(strconv.Itoa(i), p)
	}
	for _, center := range []orb.Point{{-75, -29}, {105, 29.15}, {0, 89.9}, {-179.9, 0}} {
		for range 100 {
			want := Nearest(scan, center, 2.1e7, 5, nil)
			if got := Nearest(grid, center, 2.1e7, 5, nil); !slices.Equal(got, want) {
				t.Fatalf("Nearest(grid, %v) = %v, want %v", center, got, want)
			}
			if got := Nearest(rt, center, 2.1e7, 5, nil); !slices.Equal(got, want) {
				t.Fatalf("Nearest(rtree, %v) = %v, want %v", center, got, want)
			}
		}
	}
}

// randomAntimeridianPoint returns a point within half a degree of the
// antimeridian, on either side.
func randomAntimeridianPoint(r *rand.Rand) orb.Point {
	lon := 179.5 + r.Float64()
	if lon > 180 {
		lon -= 360
	}
	return orb.Point{lon, 60 + r.Float64()}
}

// TestGridEdgesOfTheMap queries at the antimeridian and the poles.
func TestGridEdgesOfTheMap(t *testing.T) {
	grid, rt, scan := NewGrid(DefaultCellMetres), newRTree(), NewScan()
	for id, p := range map[string]orb.Point{
		"east": {179.99, 0}, "west": {-179.99, 0}, "east2": {179.9, 0}, "west2": {-179.95, 0},
		"dateline": {180, 0}, "dateline2": {-180, 0.001},
		"north": {180, 90}, "north2": {0, 89.999}, "south": {-180, -90}, "south2": {45, -89.99},
	} {
		grid.Set(id, p)
		rt.Set(id, p)
		scan.Set(id, p)
	}
	for _, c := range []orb.Point{{180, 0}, {-180, 0}, {179.999, 0.001}, {-179.999, 0}, {180, 90}, {-180, -90}, {0, 90}, {-90, 89.99}} {
		for _, radius := range []float64{0, 1000, 20000, 1e6, math.Inf(1)} {
			want := collect(t, scan, c, radius)
			if got := collect(t, grid, c, radius); !slices.Equal(got, want) {
				t.Errorf("Nearby(grid, %v, %v) = %v, want %v", c, radius, ids(got), ids(want))
			}
			if got := collect(t, rt, c, radius); !slices.Equal(got, want) {
				t.Errorf("Nearby(rtree, %v, %v) = %v, want %v", c, radius, ids(got), ids(want))
			}
		}
	}
}

// TestChangesDuringNearby changes the index from inside fn: Nearby must
// not deadlock, keep its order and report no item twice, and what changed
// ahead of the cursor is seen as it is now. The first case changes a Grid
// of 50 m cells at its first hit; the second at the last hit of the
// RTree's first batch, so that the Grid and the RTree alike must search
// again on the changed index.
func TestChangesDuringNearby(t *testing.T) {
	c := countyCenter
	grid50 := implementation{"grid/cell=50", func() Index { return NewGrid(50) }}
	tests := []struct {
		name   string
		impls  []implementation
		at     string // the hit at which fn changes the index
		change func(ix Index)
		want   []string
		moved  string // an item moved ahead of the cursor, to 15 km north
	}{
		{"at the first hit", []implementation{grid50}, "u01", func(ix Index) {
			ix.Set("u05", pointNorth(c, 10))     // moved behind the cursor: missed
			ix.Set("u02", pointNorth(c, 15000))  // not yet reported: seen where it is now
			ix.Set("u01", pointNorth(c, 12000))  // already reported: not again
			ix.Set("new", pointNorth(c, 19000))  // added ahead of the cursor: seen
			ix.Delete("u20")                     // deleted ahead of the cursor: gone
			ix.Set("u03", orb.Point{math.NaN()}) // invalid now: gone
		}, []string{"u01", "u04", "u06", "u07", "u08", "u09", "u10", "u11", "u12", "u13",
			"u14", "u15", "u16", "u17", "u18", "u19", "u02", "new"}, "u02"},
		{"between batches", []implementation{grid50, gridImpl, rtreeImpl}, "u08", func(ix Index) {
			ix.Set("u10", pointNorth(c, 10))
			ix.Set("u12", pointNorth(c, 15000))
			ix.Set("u01", pointNorth(c, 12000))
			ix.Set("new", pointNorth(c, 19000))
			ix.Delete("u20")
			ix.Set("u13", orb.Point{math.NaN()})
		}, []string{"u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09", "u11",
			"u14", "u15", "u16", "u17", "u18", "u19", "u12", "new"}, "u12"},
	}
	for _, tt := range tests {
		for _, impl := range tt.impls {
			t.Run(tt.name+"/"+impl.name, func(t *testing.T) {
				ix := impl.new()
				for i := 1; i <= 20; i++ {
					ix.Set(fmt.Sprintf("u%02d", i), pointNorth(c, float64(i)*500))
				}
				var got []Hit
				ix.Nearby(c, 20000, func(h Hit) bool {
					if h.ID == tt.at {
						tt.change(ix)
					}
					got = append(got, h)
					return true
				})
				if !slices.Equal(ids(got), tt.want) {
					t.Errorf("Nearby() = %v, want %v", ids(got), tt.want)
				}
				if i := slices.IndexFunc(got, func(h Hit) bool { return h.ID == tt.moved }); i >= 0 && got[i].Point != pointNorth(c, 15000) {
					t.Errorf("%s reported at %v, want its new position %v", tt.moved, got[i].Point, pointNorth(c, 15000))
				}
			})
		}
	}
}

// TestIndexConcurrent moves units while others query; run it with -race.
func TestIndexConcurrent(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			ix := impl.new()
			const units = 300
			r := rand.New(rand.NewPCG(3, 3))
			for i := range units {
				ix.Set(strconv.Itoa(i), randomCountyPoint(r))
			}
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 1))
					for range 3000 {
						id := strconv.Itoa(r.IntN(units))
						if r.IntN(20) == 0 {
							ix.Delete(id)
							continue
						}
						p, ok := ix.Get(id)
						if !ok {
							p = randomCountyPoint(r)
						}
						ix.Set(id, orb.Point{p[0] + r.NormFloat64()*0.002, p[1] + r.NormFloat64()*0.002})
					}
				})
			}
			for q := range 3 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(q), 2))
					for range 300 {
						center, radius := randomCountyPoint(r), 1000+r.Float64()*20000
						var prev Hit
						seen := make(map[string]bool)
						ix.Nearby(center, radius, func(h Hit) bool {
							if len(seen) > 0 && compareHits(prev, h) >= 0 {
								t.Errorf("Nearby() reported %+v after %+v", h, prev)
							}
							if seen[h.ID] {
								t.Errorf("Nearby() reported %s twice", h.ID)
							}
							if h.Distance > radius || h.Distance != Distance(center, h.Point) {
								t.Errorf("Nearby() reported %+v, beyond %v m or at the wrong distance", h, radius)
							}
							if q == 0 && r.IntN(10) == 0 {
								ix.Set(h.ID, h.Point) // fn may use the index
							}
							prev, seen[h.ID] = h, true
							return len(seen) < 40
						})
						Nearest(ix, center, radius, 5, func(id string) bool { return len(id)%2 == 0 })
						ix.Len()
					}
				})
			}
			wg.Wait()
		})
	}
}

// benchArea is a service area for the benchmarks: a square side metres
// across around the county's center. Units and calls are where people are:
// 60% around eight towns (a normal spread of 3% of the side), the rest
// anywhere.
type benchArea struct {
	name string
	side float64 // metres
}

var benchAreas = []benchArea{{"county", 50_000}, {"city", 150_000}}

func (a benchArea) point(r *rand.Rand, towns []orb.Point) orb.Point {
	halfLat := a.side / 2 / (EarthRadius * radians)
	halfLon := halfLat / math.Cos(countyCenter[1]*radians)
	if len(towns) > 0 && r.IntN(10) < 6 {
		t := towns[r.IntN(len(towns))]
		return orb.Point{t[0] + r.NormFloat64()*0.06*halfLon, t[1] + r.NormFloat64()*0.06*halfLat}
	}
	return orb.Point{countyCenter[0] + (2*r.Float64()-1)*halfLon, countyCenter[1] + (2*r.Float64()-1)*halfLat}
}

// benchFleet holds n units spread over an area, about 30% of them busy,
// and call locations to query from.
type benchFleet struct {
	ids    []string
	points []orb.Point
	busy   map[string]bool
	calls  []orb.Point
}

func newBenchFleet(a benchArea, n int) benchFleet {
	r := rand.New(rand.NewPCG(uint64(n), uint64(a.side)))
	var towns []orb.Point
	for range 8 {
		towns = append(towns, benchArea{side: a.side * 0.8}.point(r, nil))
	}
	bf := benchFleet{busy: make(map[string]bool, n)}
	for i := range n {
		id := fmt.Sprintf("ambulance-%06d", i)
		bf.ids = append(bf.ids, id)
		bf.points = append(bf.points, a.point(r, towns))
		bf.busy[id] = r.IntN(10) < 3
	}
	for range 4096 {
		bf.calls = append(bf.calls, a.point(r, towns))
	}
	return bf
}

func (bf benchFleet) fill(ix Index) Index {
	for i, id := range bf.ids {
		ix.Set(id, bf.points[i])
	}
	return ix
}

func (bf benchFleet) keep(id string) bool { return !bf.busy[id] }

// benchSizes are the fleet sizes: a county's ambulances, a city's, and
// every tracked vehicle of a city.
var benchSizes = []int{20, 200, 1_000, 10_000, 100_000}

// benchIndexes are the indexes the benchmarks compare.
var benchIndexes = []implementation{
	{"grid250", func() Index { return NewGrid(250) }},
	{"grid500", func() Index { return NewGrid(500) }},
	{"grid1000", func() Index { return NewGrid(1000) }},
	{"grid2000", func() Index { return NewGrid(2000) }},
	adaptiveImpl,
	rtreeImpl,
	scanImpl,
}

// BenchmarkNearest is the dispatcher's query, the k nearest units that are
// not busy within the largest rural radius, for each index, area, fleet
// size and k. Besides the mean (ns/op) it reports the median and the 99th
// percentile of single queries (p50-ns, p99-ns; each includes ~50 ns of
// timing). It is how the index and its cell size were chosen
// (docs/BENCHMARKS.md). The scan at 100,000 units takes a few seconds:
// -short leaves it out.
func BenchmarkNearest(b *testing.B) {
	for _, a := range benchAreas {
		for _, n := range benchSizes {
			bf := newBenchFleet(a, n)
			for _, impl := range benchIndexes {
				if impl.name == "scan" && n > 10_000 && testing.Short() {
					continue
				}
				ix := bf.fill(impl.new())
				for _, k := range []int{1, 5} {
					b.Run(fmt.Sprintf("%s/n=%d/k=%d/%s", a.name, n, k, impl.name), func(b *testing.B) {
						benchNearest(b, ix, bf, k)
					})
				}
			}
		}
	}
}

// benchNearest queries ix from each call location in turn, into a reused
// slice.
func benchNearest(b *testing.B, ix Index, bf benchFleet, k int) {
	keep := bf.keep
	var lat [1 << 14]time.Duration
	buf := make([]Hit, 0, k)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t0 := time.Now()
		buf = AppendNearest(buf[:0], ix, bf.calls[i%len(bf.calls)], 20000, k, keep)
		lat[i%len(lat)] = time.Since(t0)
		i++
	}
	s := slices.Clone(lat[:min(i, len(lat))])
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2]), "p50-ns")
	b.ReportMetric(float64(s[len(s)*99/100]), "p99-ns")
}

// BenchmarkNearby is the same query walked lazily through Nearby, as the
// ranker does, with a callback made once: the index itself must allocate
// nothing.
func BenchmarkNearby(b *testing.B) {
	a := benchAreas[0]
	for _, n := range []int{1_000, 10_000, 100_000} {
		bf := newBenchFleet(a, n)
		for _, impl := range benchIndexes {
			if impl.name == "scan" {
				continue // it allocates by design
			}
			ix := bf.fill(impl.new())
			b.Run(fmt.Sprintf("%s/n=%d/%s", a.name, n, impl.name), func(b *testing.B) {
				var c benchCollector
				c.keep, c.fn = bf.keep, c.add
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					c.hits, c.k = c.hits[:0], 5
					ix.Nearby(bf.calls[i%len(bf.calls)], 20000, c.fn)
					i++
				}
			})
		}
	}
}

// benchCollector keeps the first k hits that keep accepts.
type benchCollector struct {
	hits []Hit
	k    int
	keep func(string) bool
	fn   func(Hit) bool
}

func (c *benchCollector) add(h Hit) bool {
	if c.keep(h.ID) {
		c.hits = append(c.hits, h)
	}
	return len(c.hits) < c.k
}

// BenchmarkSet is a GPS update: a unit moves some tens of metres, now and
// then into another cell.
func BenchmarkSet(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		bf := newBenchFleet(benchAreas[0], n)
		r := rand.New(rand.NewPCG(9, 9))
		moved := make([]orb.Point, len(bf.points))
		for i, p := range bf.points {
			moved[i] = orb.Point{p[0] + r.NormFloat64()*0.0003, p[1] + r.NormFloat64()*0.0003}
		}
		for _, impl := range benchIndexes {
			b.Run(fmt.Sprintf("n=%d/%s", n, impl.name), func(b *testing.B) {
				ix := bf.fill(impl.new())
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					j := i % len(bf.ids)
					p := bf.points[j]
					if (i/len(bf.ids))%2 == 0 {
						p = moved[j]
					}
					ix.Set(bf.ids[j], p)
					i++
				}
			})
		}
	}
}
