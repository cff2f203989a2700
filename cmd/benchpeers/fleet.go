package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/geo"
)

// The county every pair runs in: 50 km by 50 km around Fushun, Sichuan,
// the shape geo's benchmarks use.
var (
	countyCenter = orb.Point{105.0, 29.15}
	countySide   = 50_000.0 // metres
)

const (
	cityID   = "510300"
	countyID = "510322"
)

// fleet is what both sides of a pair are given: the same units at the same
// places and the same call points, from one seed.
type fleet struct {
	ids    []string
	points []orb.Point // [lon, lat], WGS-84
	calls  []orb.Point
}

// newFleet places n units and calls call points over the county: 60%
// around eight towns, the rest anywhere, as ambulances and calls are.
func newFleet(seed uint64, n, calls int) *fleet {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	halfLat := countySide / 2 / (geo.EarthRadius * math.Pi / 180)
	halfLon := halfLat / math.Cos(countyCenter[1]*math.Pi/180)
	uniform := func(scale float64) orb.Point {
		return orb.Point{
			countyCenter[0] + (2*r.Float64()-1)*halfLon*scale,
			countyCenter[1] + (2*r.Float64()-1)*halfLat*scale,
		}
	}
	var towns []orb.Point
	for range 8 {
		towns = append(towns, uniform(0.8))
	}
	point := func() orb.Point {
		if r.IntN(10) < 6 {
			t := towns[r.IntN(len(towns))]
			p := orb.Point{t[0] + r.NormFloat64()*0.06*halfLon, t[1] + r.NormFloat64()*0.06*halfLat}
			// Keep everyone inside the county.
			p[0] = min(max(p[0], countyCenter[0]-halfLon), countyCenter[0]+halfLon)
			p[1] = min(max(p[1], countyCenter[1]-halfLat), countyCenter[1]+halfLat)
			return p
		}
		return uniform(1)
	}
	f := &fleet{}
	for i := range n {
		f.ids = append(f.ids, fmt.Sprintf("U%06d", i))
		f.points = append(f.points, point())
	}
	for range calls {
		f.calls = append(f.calls, point())
	}
	return f
}

// writeArea writes an area file holding the county (a box a kilometre
// wider than the fleet's) and the fleet's units, and returns its path.
func (f *fleet) writeArea(dir string) (string, error) {
	margin := 1.0 + 2000/countySide
	halfLat := countySide / 2 * margin / (geo.EarthRadius * math.Pi / 180)
	halfLon := halfLat / math.Cos(countyCenter[1]*math.Pi/180)
	lo := orb.Point{countyCenter[0] - halfLon, countyCenter[1] - halfLat}
	hi := orb.Point{countyCenter[0] + halfLon, countyCenter[1] + halfLat}
	ring := orb.Ring{lo, {hi[0], lo[1]}, hi, {lo[0], hi[1]}, lo}
	region, err := geo.NewRegion(countyID, "Bench county", orb.Polygon{ring})
	if err != nil {
		return "", err
	}
	a := &dispatch.Area{
		Name: fmt.Sprintf("benchpeers, %d units", len(f.ids)),
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: cityID, Name: "Bench city"},
			{ID: countyID, Name: "Bench county", Parent: cityID, Region: region},
		},
	}
	for i, id := range f.ids {
		caps := []string{"bls"}
		if i%5 == 0 {
			caps = []string{"als"}
		}
		a.Units = append(a.Units, dispatch.Unit{ID: id, Callsign: "B-" + id[1:], Jurisdiction: countyID, Capabilities: caps})
	}
	b, err := geojson.Encode(a)
	if err != nil {
		return "", fmt.Errorf("encode area: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("area-%d.geojson", len(f.ids)))
	return path, os.WriteFile(path, b, 0o644)
}
