package geojson

import (
	"bytes"
	_ "embed"
	"slices"
	"sync"

	"github.com/lifeline-ems/lifeline/dispatch"
)

//go:generate go run ./internal/gendemo -src ../../../shared/data/areas/510300_full.json -out demo.geojson

//go:embed demo.geojson
var demoBytes []byte

var demo = sync.OnceValue(func() *dispatch.Area {
	a, err := Decode(bytes.NewReader(demoBytes), "demo.geojson")
	if err != nil {
		panic("geojson: the embedded demo area is broken: " + err.Error())
	}
	return a
})

// Demo returns the built-in demo area: Fushun County (富顺县, adcode
// 510322) with the other five districts and counties of Zigong (自贡市,
// 510300), Sichuan. The boundaries are surveyed (DataV/AMap, converted from
// GCJ-02 to WGS-84); the urban zone, stations, hospital capabilities and the
// 18 units are illustrative. The embedded file is decoded once; every call
// returns a fresh copy that the caller may change. docs/AREA.md says how the
// file is made.
func Demo() *dispatch.Area {
	return clone(demo())
}

// DemoBytes returns a copy of the embedded demo area file, demo.geojson.
func DemoBytes() []byte {
	return slices.Clone(demoBytes)
}

// clone copies a deeply enough that changing the copy leaves a alone;
// regions are immutable and shared.
func clone(a *dispatch.Area) *dispatch.Area {
	c := *a
	c.Jurisdictions = slices.Clone(a.Jurisdictions)
	c.Zones = slices.Clone(a.Zones)
	c.Stations = slices.Clone(a.Stations)
	c.Hospitals = slices.Clone(a.Hospitals)
	for i := range c.Hospitals {
		c.Hospitals[i].Centres = slices.Clone(c.Hospitals[i].Centres)
	}
	c.Units = slices.Clone(a.Units)
	for i := range c.Units {
		c.Units[i].Capabilities = slices.Clone(c.Units[i].Capabilities)
	}
	return &c
}
