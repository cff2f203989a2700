package geojson_test

import (
	"fmt"
	"strings"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch/geojson"
)

func ExampleDecode() {
	const file = `{"type": "FeatureCollection", "lifeline": {"version": 1, "name": "Example"},
"features": [
  {"type": "Feature", "properties": {"kind": "jurisdiction", "id": "510322", "name": "富顺县"},
   "geometry": {"type": "Polygon", "coordinates": [[[104.9, 29.1], [105.1, 29.1], [105.1, 29.3], [104.9, 29.3], [104.9, 29.1]]]}},
  {"type": "Feature", "properties": {"kind": "station", "id": "ST-A", "name": "Station A", "jurisdiction": "510322",
   "station_kind": "township", "illustrative": true},
   "geometry": {"type": "Point", "coordinates": [105.3, 29.2]}}
]}`
	_, err := geojson.Decode(strings.NewReader(file), "example.geojson")
	fmt.Println(err)

	fixed := strings.Replace(file, "[105.3, 29.2]", "[105.0, 29.2]", 1)
	a, err := geojson.Decode(strings.NewReader(fixed), "example.geojson")
	if err != nil {
		fmt.Println(err)
		return
	}
	j, zone, _ := a.Locate(orb.Point{105.05, 29.15})
	fmt.Println(j.Name, zone)
	// Output:
	// invalid: area example.geojson: feature 1 (station ST-A): field "geometry": point [105.3, 29.2] lies outside jurisdiction 510322 (富顺县)
	// 富顺县 rural
}
