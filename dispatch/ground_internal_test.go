package dispatch

import (
	"testing"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/geo"
)

// TestGround: where each unit stands on a call's ladder, and the radii
// (what coverage and the call's first radius measure against) come from
// the jurisdiction's policy, inherited from its city.
func TestGround(t *testing.T) {
	sq := func(id string, c orb.Point) *geo.Region {
		return dispatchtest.Region(t, id, dispatchtest.Square(c, 0.1))
	}
	a := &Area{
		Name: "ground",
		Jurisdictions: []Jurisdiction{
			{ID: "510300", Name: "city", Radii: geo.RadiusPolicy{Rural: 12000}},
			{ID: "510322", Name: "A", Parent: "510300", Region: sq("510322", orb.Point{105.0, 29.2}), Radii: geo.RadiusPolicy{Urban: 3000}},
			{ID: "510311", Name: "B", Parent: "510300", Region: sq("510311", orb.Point{105.2, 29.2})},
			{ID: "510321", Name: "C", Parent: "510300", Region: sq("510321", orb.Point{104.6, 29.2})},
			{ID: "510329", Name: "A's district", Parent: "510322"},
			{ID: "510400", Name: "other city"},
			{ID: "510402", Name: "D", Parent: "510400", Region: sq("510402", orb.Point{105.4, 29.2})},
		},
		Units: []Unit{{ID: "U1", Jurisdiction: "510311"}, {ID: "U2", Jurisdiction: "510321"}, {ID: "U3", Jurisdiction: "510329"}},
	}
	g := newGround(a, geo.DefaultRadii)
	buckets := []struct {
		home, unit string
		want       int
		ok         bool
	}{
		{"510322", "510322", bucketOwn, true},
		{"510322", "510329", bucketOwn, true},
		{"510322", "510311", bucketNeighbour, true},
		{"510322", "510321", bucketCity, true},
		{"510322", "510300", bucketCity, true},
		{"510322", "510402", 0, false},
		{"510322", "999999", 0, false},
		{"510300", "510311", bucketOwn, true},
		{"510300", "510402", 0, false},
	}
	for _, tt := range buckets {
		if got, ok := g.bucket(tt.home, tt.unit); got != tt.want || ok != tt.ok {
			t.Errorf("bucket(%s, %s) = %d, %v; want %d, %v", tt.home, tt.unit, got, ok, tt.want, tt.ok)
		}
	}
	if got := g.places["510322"].units; got != [nBuckets]int{1, 1, 1} {
		t.Errorf("units on A's ladder %v, want one on each rung", got)
	}
	s := &Service{radii: geo.DefaultRadii, ground: g}
	radii := []struct {
		jur  string
		z    geo.Zone
		want float64
	}{
		{"510322", geo.Urban, 3000},  // its own
		{"510322", geo.Rural, 12000}, // its city's
		{"510311", geo.Urban, 5000},  // the default
		{"999999", geo.Rural, 10000}, // not in the area: the default
	}
	for _, tt := range radii {
		if got := s.serviceRadius(tt.jur, tt.z); got != tt.want {
			t.Errorf("serviceRadius(%s, %s) = %v, want %v", tt.jur, tt.z, got, tt.want)
		}
	}
}
