package geo

import (
	"errors"
	"math"
	"testing"

	"github.com/paulmach/orb"
)

// A 0.2° square township around (105.1, 29.1) with a 0.1° square hole, a
// lake, in the middle, and a separate island to the east.
var (
	township = orb.Polygon{
		{{105.0, 29.0}, {105.2, 29.0}, {105.2, 29.2}, {105.0, 29.2}, {105.0, 29.0}},
		{{105.05, 29.05}, {105.05, 29.15}, {105.15, 29.15}, {105.15, 29.05}, {105.05, 29.05}},
	}
	island = orb.Polygon{
		{{105.3, 29.0}, {105.4, 29.0}, {105.4, 29.1}, {105.3, 29.1}, {105.3, 29.0}},
	}
)

func TestRegionContains(t *testing.T) {
	r, err := NewRegion("tw", "Township", orb.MultiPolygon{township, island})
	if err != nil {
		t.Fatalf("NewRegion() error = %v", err)
	}
	tests := []struct {
		name string
		p    orb.Point
		want bool
	}{
		{"inside", orb.Point{105.02, 29.1}, true},
		{"in the hole", orb.Point{105.1, 29.1}, false},
		{"between hole and edge", orb.Point{105.1, 29.17}, true},
		{"on the outer edge", orb.Point{105.0, 29.1}, true},
		{"in the island", orb.Point{105.35, 29.05}, true},
		{"between the parts", orb.Point{105.25, 29.05}, false},
		{"inside the bound, outside the parts", orb.Point{105.35, 29.15}, false},
		{"outside the bound", orb.Point{106, 30}, false},
		{"swapped lon and lat", orb.Point{29.1, 105.02}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Contains(tt.p); got != tt.want {
				t.Errorf("Contains(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestRegionAccessors(t *testing.T) {
	in := township.Clone()
	r, err := NewRegion("tw", "Township", in)
	if err != nil {
		t.Fatalf("NewRegion() error = %v", err)
	}
	if r.ID != "tw" || r.Name != "Township" {
		t.Errorf("ID, Name = %q, %q, want %q, %q", r.ID, r.Name, "tw", "Township")
	}
	if got, want := r.Bound(), (orb.Bound{Min: orb.Point{105.0, 29.0}, Max: orb.Point{105.2, 29.2}}); got != want {
		t.Errorf("Bound() = %v, want %v", got, want)
	}
	if got, want := r.Centroid(), (orb.Point{105.1, 29.1}); math.Abs(got[0]-want[0]) > 1e-9 || math.Abs(got[1]-want[1]) > 1e-9 {
		t.Errorf("Centroid() = %v, want %v", got, want)
	}
	if got := r.Geometry(); !orb.Equal(got, orb.MultiPolygon{township}) {
		t.Errorf("Geometry() = %v, want %v", got, orb.MultiPolygon{township})
	}

	// Neither the caller's polygon nor Geometry's result is the region's own.
	in[1][0] = orb.Point{0, 0}
	r.Geometry()[0][1][0] = orb.Point{0, 0}
	if r.Contains(orb.Point{105.1, 29.1}) {
		t.Errorf("Contains(hole) = true after changing copies, want false")
	}
}

func TestNewRegionErrors(t *testing.T) {
	tests := []struct {
		name string
		g    orb.Geometry
	}{
		{"nil", nil},
		{"point", orb.Point{105, 29}},
		{"line", orb.LineString{{105, 29}, {105.1, 29.1}}},
		{"ring", township[0]},
		{"bound", orb.Bound{Min: orb.Point{105, 29}, Max: orb.Point{105.1, 29.1}}},
		{"collection", orb.Collection{township}},
		{"empty polygon", orb.Polygon{}},
		{"empty multipolygon", orb.MultiPolygon{}},
		{"multipolygon with an empty polygon", orb.MultiPolygon{township, {}}},
		{"ring of three points", orb.Polygon{{{105, 29}, {105.1, 29}, {105, 29}}}},
		{"hole of three points", orb.Polygon{township[0], {{105.05, 29.05}, {105.1, 29.1}, {105.05, 29.05}}}},
		{"NaN coordinate", orb.Polygon{{{105, 29}, {105.1, math.NaN()}, {105.1, 29.1}, {105, 29}}}},
		{"latitude out of range", orb.Polygon{{{29, 105}, {29.1, 105}, {29.1, 105.1}, {29, 105}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRegion("x", "X", tt.g)
			if !errors.Is(err, ErrInvalidGeometry) {
				t.Errorf("NewRegion(%v) error = %v, want ErrInvalidGeometry", tt.g, err)
			}
			if r != nil {
				t.Errorf("NewRegion(%v) = %v, want nil", tt.g, r)
			}
		})
	}
}
