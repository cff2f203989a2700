package geo_test

import (
	"fmt"
	"time"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/paulmach/orb"
)

func ExampleNearest() {
	units := geo.NewAdaptiveGrid()
	units.Set("A1", orb.Point{105.000, 29.160}) // about 1.1 km north
	units.Set("A2", orb.Point{105.010, 29.150}) // about 1 km east
	units.Set("A3", orb.Point{105.002, 29.151}) // about 200 m away, but busy
	units.Set("A4", orb.Point{105.300, 29.150}) // about 29 km east

	busy := map[string]bool{"A3": true}
	incident := orb.Point{105.0, 29.15}
	for _, radius := range geo.DefaultRadii.Steps(geo.Rural) {
		hits := geo.Nearest(units, incident, radius, 2, func(id string) bool { return !busy[id] })
		for _, h := range hits {
			eta := geo.DefaultETA.Estimate(h.Point, incident, geo.Rural, geo.Rural)
			fmt.Printf("%s %.0f m, %.0f m by road, %v\n", h.ID, h.Distance, eta.Metres, eta.Duration.Round(time.Second))
		}
		if len(hits) > 0 {
			break
		}
	}
	// Output:
	// A2 971 m, 1457 m by road, 1m45s
	// A1 1112 m, 1668 m by road, 2m0s
}

func ExampleGCJ02ToWGS84() {
	// A point read off AMap, which uses GCJ-02.
	amap := orb.Point{105.003, 29.147}
	wgs := geo.GCJ02ToWGS84(amap)
	fmt.Printf("WGS-84 %.6f, %.6f, %.0f m from the AMap coordinates\n", wgs[0], wgs[1], geo.Distance(wgs, amap))
	// Output:
	// WGS-84 105.000037, 29.149975, 438 m from the AMap coordinates
}

func ExampleRadiusPolicy_Steps() {
	fmt.Println(geo.DefaultRadii.Steps(geo.Urban))
	fmt.Println(geo.DefaultRadii.Steps(geo.Rural))
	// Output:
	// [5000]
	// [10000 20000]
}
