package sim

import (
	"math"
	"slices"
	"sort"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Scanline raster of the bounds.
const (
	rowStep = 0.0002 // degrees of latitude between rows, about 22 m
	maxRows = 8192   // rows per region at most; larger regions get coarser rows
)

// scanlines answers whether a point lies inside a region in constant time,
// which route and the weave ask thousands of times per drive (a detailed
// county boundary takes tens of microseconds with geo.Region.Contains).
// For each row of latitudes it keeps the sorted longitudes where the
// region's boundary crosses the row's centre line; a point is inside when
// an odd number of them lie west of it. It is exact along the centre
// lines and off by at most half a row, about 11 m, in between.
type scanlines struct {
	minLat, step float64
	rows         [][]float64
}

func newScanlines(r *geo.Region) *scanlines {
	b := r.Bound()
	n := max(1, min(int(math.Ceil((b.Max[1]-b.Min[1])/rowStep)), maxRows))
	s := &scanlines{minLat: b.Min[1], step: math.Max((b.Max[1]-b.Min[1])/float64(n), 1e-9), rows: make([][]float64, n)}
	for _, poly := range r.Geometry() {
		for _, ring := range poly {
			for i := 1; i < len(ring); i++ {
				s.edge(ring[i-1], ring[i])
			}
			if len(ring) > 0 && ring[0] != ring[len(ring)-1] {
				s.edge(ring[len(ring)-1], ring[0])
			}
		}
	}
	for _, row := range s.rows {
		slices.Sort(row)
	}
	return s
}

// edge records where the edge a-b crosses the centre lines of the rows.
// An edge counts for latitudes in [lower end, upper end), so a vertex on
// a centre line is counted once.
func (s *scanlines) edge(a, b orb.Point) {
	if a[1] == b[1] {
		return
	}
	if a[1] > b[1] {
		a, b = b, a
	}
	first := max(0, int(math.Ceil((a[1]-s.minLat)/s.step-0.5)))
	for r := first; r < len(s.rows); r++ {
		lat := s.minLat + (float64(r)+0.5)*s.step
		if lat >= b[1] {
			break
		}
		if lat < a[1] {
			continue
		}
		s.rows[r] = append(s.rows[r], a[0]+(b[0]-a[0])*(lat-a[1])/(b[1]-a[1]))
	}
}

// contains reports whether p lies inside, to within half a row.
func (s *scanlines) contains(p orb.Point) bool {
	r := int(math.Floor((p[1] - s.minLat) / s.step))
	if r < 0 || r >= len(s.rows) || math.IsNaN(p[0]) {
		return false
	}
	return sort.SearchFloat64s(s.rows[r], p[0])%2 == 1
}

// insideAny returns a fast test of whether a point lies in any of regions,
// nil when there are none.
func insideAny(regions []*geo.Region) func(orb.Point) bool {
	var lines []*scanlines
	for _, r := range regions {
		if r != nil {
			lines = append(lines, newScanlines(r))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return func(p orb.Point) bool {
		for _, s := range lines {
			if s.contains(p) {
				return true
			}
		}
		return false
	}
}
