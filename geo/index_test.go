package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

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
	gridImpl = implementation{"grid", func() Index { return NewGrid(DefaultCellMetres) }}
	scanImpl = implementation{"scan", func() Index { return NewScan() }}

	// implementations are what the conformance tests run against.
	implementations = []implementation{gridImpl, {"grid/cell=50", func() Index { return NewGrid(50) }}, scanImpl}
	// benchImplementations are what the benchmarks compare.
	benchImplementations = []implementation{gridImpl, scanImpl}
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

// TestGridMatchesScan is the property that makes the Grid trustworthy: for
// random data and random queries it reports exactly what the brute-force
// Scan reports, in the same order.
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
			set := func(id string, p orb.Point) { grid.Set(id, p); scan.Set(id, p) }

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
					grid.Delete(id)
					scan.Delete(id)
				case 1:
					set(id, lay.point(r))
				default:
					p, _ := scan.Get(id)
					set(id, orb.Point{p[0] + r.NormFloat64()*0.001, p[1] + r.NormFloat64()*0.001})
				}
			}
			if grid.Len() != scan.Len() {
				t.Fatalf("grid.Len() = %d, want %d", grid.Len(), scan.Len())
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
				got := Nearest(grid, center, radius, k, keep)
				want := Nearest(scan, center, radius, k, keep)
				if !slices.Equal(got, want) {
					t.Fatalf("Nearest(grid, %v, %v, %d) = %v\nwant (scan) %v", center, radius, k, got, want)
				}
				queries++
				hits += len(got)
			}
		})
	}
	t.Logf("%d queries, %d hits", queries, hits)
}

// TestGridLargeRadius checks that a query whose radius dwarfs the occupied
// area does not walk every ring out to the radius: with 10 m cells, a walk
// from the far side of the earth would be two million rings per query.
func TestGridLargeRadius(t *testing.T) {
	grid, scan := NewGrid(10), NewScan()
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 2000 {
		p := randomCountyPoint(r)
		grid.Set(strconv.Itoa(i), p)
		scan.Set(strconv.Itoa(i), p)
	}
	for _, center := range []orb.Point{{-75, -29}, {105, 29.15}, {0, 89.9}, {-179.9, 0}} {
		for range 100 {
			got := Nearest(grid, center, 2.1e7, 5, nil)
			if want := Nearest(scan, center, 2.1e7, 5, nil); !slices.Equal(got, want) {
				t.Fatalf("Nearest(grid, %v) = %v, want %v", center, got, want)
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
	grid, scan := NewGrid(DefaultCellMetres), NewScan()
	for id, p := range map[string]orb.Point{
		"east": {179.99, 0}, "west": {-179.99, 0}, "east2": {179.9, 0}, "west2": {-179.95, 0},
		"dateline": {180, 0}, "dateline2": {-180, 0.001},
		"north": {180, 90}, "north2": {0, 89.999}, "south": {-180, -90}, "south2": {45, -89.99},
	} {
		grid.Set(id, p)
		scan.Set(id, p)
	}
	for _, c := range []orb.Point{{180, 0}, {-180, 0}, {179.999, 0.001}, {-179.999, 0}, {180, 90}, {-180, -90}, {0, 90}, {-90, 89.99}} {
		for _, radius := range []float64{0, 1000, 20000, 1e6, math.Inf(1)} {
			got, want := collect(t, grid, c, radius), collect(t, scan, c, radius)
			if !slices.Equal(got, want) {
				t.Errorf("Nearby(grid, %v, %v) = %v, want %v", c, radius, ids(got), ids(want))
			}
		}
	}
}

// TestGridChangesDuringNearby changes the grid from inside fn: Nearby must
// not deadlock, keep its order and report no item twice.
func TestGridChangesDuringNearby(t *testing.T) {
	c := countyCenter
	grid := NewGrid(50)
	for i := 1; i <= 20; i++ {
		grid.Set(fmt.Sprintf("u%02d", i), pointNorth(c, float64(i)*500))
	}
	var got []Hit
	grid.Nearby(c, 20000, func(h Hit) bool {
		if h.ID == "u01" {
			grid.Set("u05", pointNorth(c, 10))     // moved behind the cursor: missed
			grid.Set("u02", pointNorth(c, 15000))  // not yet reported: seen where it is now
			grid.Set("u01", pointNorth(c, 12000))  // already reported: not again
			grid.Set("new", pointNorth(c, 19000))  // added ahead of the cursor: seen
			grid.Delete("u20")                     // deleted ahead of the cursor: gone
			grid.Set("u03", orb.Point{math.NaN()}) // invalid now: gone
		}
		got = append(got, h)
		return true
	})
	want := []string{"u01", "u04", "u06", "u07", "u08", "u09", "u10", "u11", "u12", "u13",
		"u14", "u15", "u16", "u17", "u18", "u19", "u02", "new"}
	if !slices.Equal(ids(got), want) {
		t.Errorf("Nearby() = %v, want %v", ids(got), want)
	}
	if i := slices.IndexFunc(got, func(h Hit) bool { return h.ID == "u02" }); i >= 0 && got[i].Point != pointNorth(c, 15000) {
		t.Errorf("u02 reported at %v, want its new position %v", got[i].Point, pointNorth(c, 15000))
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

// benchCounty holds n units spread over the county, about half of them
// available, and incident locations to query from.
type benchCounty struct {
	ids       []string
	points    []orb.Point
	available map[string]bool
	incidents []orb.Point
}

func newBenchCounty(n int) benchCounty {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	bc := benchCounty{available: make(map[string]bool, n)}
	for i := range n {
		id := fmt.Sprintf("ambulance-%05d", i)
		bc.ids = append(bc.ids, id)
		bc.points = append(bc.points, randomCountyPoint(r))
		bc.available[id] = r.IntN(2) == 0
	}
	for range 1024 {
		bc.incidents = append(bc.incidents, randomCountyPoint(r))
	}
	return bc
}

func (bc benchCounty) fill(ix Index) Index {
	for i, id := range bc.ids {
		ix.Set(id, bc.points[i])
	}
	return ix
}

func (bc benchCounty) keep(id string) bool { return bc.available[id] }

// benchNearest is the dispatcher's query: the 5 nearest available units
// within the largest rural radius.
func benchNearest(b *testing.B, ix Index, bc benchCounty) {
	keep := bc.keep
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Nearest(ix, bc.incidents[i%len(bc.incidents)], 20000, 5, keep)
		i++
	}
}

var benchSizes = []int{18, 200, 2000, 20000}

func BenchmarkNearest(b *testing.B) {
	for _, impl := range benchImplementations {
		for _, n := range benchSizes {
			bc := newBenchCounty(n)
			b.Run(fmt.Sprintf("%s/n=%d", impl.name, n), func(b *testing.B) {
				benchNearest(b, bc.fill(impl.new()), bc)
			})
		}
	}
}

// BenchmarkGridCell is how DefaultCellMetres was chosen.
func BenchmarkGridCell(b *testing.B) {
	for _, cell := range []float64{500, 1000, 2000, 5000} {
		for _, n := range benchSizes {
			bc := newBenchCounty(n)
			b.Run(fmt.Sprintf("cell=%v/n=%d", cell, n), func(b *testing.B) {
				benchNearest(b, bc.fill(NewGrid(cell)), bc)
			})
		}
	}
}

// BenchmarkSet is a GPS update: a unit moves some tens of metres, now and
// then into another cell.
func BenchmarkSet(b *testing.B) {
	for _, impl := range benchImplementations {
		b.Run(impl.name+"/n=2000", func(b *testing.B) {
			bc := newBenchCounty(2000)
			ix := bc.fill(impl.new())
			r := rand.New(rand.NewPCG(9, 9))
			moved := make([]orb.Point, len(bc.points))
			for i, p := range bc.points {
				moved[i] = orb.Point{p[0] + r.NormFloat64()*0.0003, p[1] + r.NormFloat64()*0.0003}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				j := i % len(bc.ids)
				p := bc.points[j]
				if (i/len(bc.ids))%2 == 0 {
					p = moved[j]
				}
				ix.Set(bc.ids[j], p)
				i++
			}
		})
	}
}
