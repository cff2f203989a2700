package sim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// star returns a concave, county-sized region of n vertices around
// station: a wavy star 20 km across, with a square lake in the middle
// when hole is set.
func star(tb testing.TB, n int, hole bool) *geo.Region {
	tb.Helper()
	var ring orb.Ring
	for i := range n {
		a := 2 * math.Pi * float64(i) / float64(n)
		r := 10000 * (1 + 0.3*math.Sin(7*a) + 0.03*math.Sin(97*a))
		ring = append(ring, offset(station, r*math.Sin(a), r*math.Cos(a)))
	}
	poly := orb.Polygon{append(ring, ring[0])}
	if hole {
		p := func(e, n float64) orb.Point { return offset(station, e, n) }
		poly = append(poly, orb.Ring{p(-1000, -1000), p(-1000, 1000), p(1000, 1000), p(1000, -1000), p(-1000, -1000)})
	}
	r, err := geo.NewRegion("star", "Star", poly)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestScanlines(t *testing.T) {
	tests := []struct {
		name   string
		region *geo.Region
	}{
		{"U", uRegion(t)},
		{"star", star(t, 1200, false)},
		{"star with a lake", star(t, 1200, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inside := insideAny([]*geo.Region{tt.region})
			b := tt.region.Bound()
			rng := rand.New(rand.NewPCG(1, 2))
			checked := 0
			for range 3000 {
				p := orb.Point{b.Min[0] + (b.Max[0]-b.Min[0])*(1.2*rng.Float64()-0.1), b.Min[1] + (b.Max[1]-b.Min[1])*(1.2*rng.Float64()-0.1)}
				want := tt.region.Contains(p)
				near := false // within half a row, about 11 m, of the border
				for _, d := range [][2]float64{{0, 15}, {0, -15}, {15, 0}, {-15, 0}} {
					near = near || tt.region.Contains(offset(p, d[0], d[1])) != want
				}
				if near {
					continue
				}
				checked++
				if got := inside(p); got != want {
					t.Fatalf("inside(%v) = %t, want %t", p, got, want)
				}
			}
			if checked < 2000 {
				t.Errorf("checked %d points, want most of 3000", checked)
			}
		})
	}
	if insideAny(nil) != nil {
		t.Error("insideAny(nil) is not nil")
	}
}

func BenchmarkInside(b *testing.B) {
	r := star(b, 1200, true)
	inside := insideAny([]*geo.Region{r})
	p := offset(station, 3000, 4000)
	b.Run("scanlines", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			inside(p)
		}
	})
	b.Run("region", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Contains(p)
		}
	})
}

// BenchmarkRoute routes between random points of a concave county-sized
// region, as every drive of a bounded world does.
func BenchmarkRoute(b *testing.B) {
	r := star(b, 1200, true)
	inside := insideAny([]*geo.Region{r})
	rng := rand.New(rand.NewPCG(1, 2))
	var pts []orb.Point
	for len(pts) < 256 {
		if p := offset(station, 26000*(rng.Float64()-0.5), 26000*(rng.Float64()-0.5)); inside(p) {
			pts = append(pts, p)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from, to := pts[i%len(pts)], pts[(i*7+3)%len(pts)]
		newTrip(route(from, to, inside), 50, wiggle{Amp: 20, Wavelength: 500}, inside)
		i++
	}
}
