package geo_test

import (
	"math"
	"slices"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// east returns the point d metres east and n metres north of p.
func offset(p orb.Point, east, north float64) orb.Point {
	return orb.Point{p[0] + east/(geo.EarthRadius*math.Pi/180*math.Cos(p[1]*math.Pi/180)), p[1] + north/(geo.EarthRadius*math.Pi/180)}
}

func TestSimplify(t *testing.T) {
	start := orb.Point{104.98, 29.18}
	// East 1 km in 100 m steps with a 3 m wobble, then north 1 km: a
	// corner, which must survive, and wobble, which must not at 10 m.
	var track []orb.Point
	for i := range 11 {
		wobble := 0.0
		if i%2 == 1 {
			wobble = 3
		}
		track = append(track, offset(start, float64(i)*100, wobble))
	}
	corner := track[len(track)-1]
	for i := 1; i <= 10; i++ {
		track = append(track, offset(corner, 0, float64(i)*100))
	}
	tests := []struct {
		name   string
		track  []orb.Point
		metres float64
		want   []int
	}{
		{"10 m drops the wobble, keeps the corner", track, 10, []int{0, 10, 20}},
		{"1 m keeps the wobble", track, 1, nil}, // checked below: more than 3 points
		{"no tolerance keeps all", track, 0, seq(len(track))},
		{"two points", track[:2], 10, []int{0, 1}},
		{"one point", track[:1], 10, []int{0}},
		{"none", nil, 10, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := geo.Simplify(tt.track, tt.metres)
			if tt.want == nil {
				if len(got) <= 3 || !slices.IsSorted(got) {
					t.Fatalf("kept %v: want the wobble kept, in order", got)
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("kept %v, want %v", got, tt.want)
			}
		})
	}
	// A unit standing still: equal points, each index at most once.
	still := []orb.Point{start, start, start, offset(start, 500, 0), offset(start, 500, 0)}
	if got := geo.Simplify(still, 5); !slices.Equal(got, []int{0, 4}) {
		t.Fatalf("a unit standing still then moving: kept %v, want [0 4]", got)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func BenchmarkSimplify(b *testing.B) {
	track := make([]orb.Point, 5000)
	for i := range track {
		track[i] = offset(orb.Point{104.98, 29.18}, float64(i)*8, 20*math.Sin(float64(i)/30))
	}
	b.ReportAllocs()
	for b.Loop() {
		geo.Simplify(track, 10)
	}
}
