package dispatch

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// TestCoverageFlatApproximation: the cells each finds around a point are
// exactly those within their radius by the haversine distance, up to the
// limits of the flat approximation it uses (50 km, 60° of latitude), and
// beyond them.
func TestCoverageFlatApproximation(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, tt := range []struct{ lat, radius float64 }{{0, 50000}, {29.2, 10000}, {29.2, 50000}, {59.9, 50000}, {-59.9, 30000}, {70, 60000}} {
		t.Run(fmt.Sprintf("lat=%v/r=%v", tt.lat, tt.radius), func(t *testing.T) {
			half := 1.2 // degrees of latitude: about 133 km
			area := &Area{Jurisdictions: []Jurisdiction{{ID: "J", Name: "j"}}}
			ring := orb.Ring{{-half * 2, tt.lat - half}, {half * 2, tt.lat - half}, {half * 2, tt.lat + half}, {-half * 2, tt.lat + half}, {-half * 2, tt.lat - half}}
			r, err := geo.NewRegion("J", "j", orb.Polygon{ring})
			if err != nil {
				t.Fatal(err)
			}
			area.Jurisdictions[0].Region = r
			c := NewCoverage(area, 2000, func(string, geo.Zone) float64 { return tt.radius })
			for range 6 {
				p := orb.Point{(rng.Float64()*2 - 1) * half, tt.lat + (rng.Float64()*2-1)*half/2}
				got := map[int32]bool{}
				c.each(p, 0, func(cell int32) { got[cell] = true })
				for cell := range c.jur {
					want := geo.Distance(p, orb.Point{c.lon[cell], c.lat[cell]}) <= tt.radius
					if got[int32(cell)] != want {
						t.Fatalf("cell at %v, %.1f m from %v: found %v", orb.Point{c.lon[cell], c.lat[cell]}, geo.Distance(p, orb.Point{c.lon[cell], c.lat[cell]}), p, got[int32(cell)])
					}
				}
			}
		})
	}
}
