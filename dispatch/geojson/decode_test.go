package geojson_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/geo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The features of a small valid area, one string each; the error cases
// below break one of them.
const (
	fCity     = `{"type":"Feature","properties":{"kind":"jurisdiction","id":"510300","name":"City"},"geometry":null}`
	fCounty   = `{"type":"Feature","properties":{"kind":"jurisdiction","id":"510322","name":"County","parent":"510300"},"geometry":{"type":"Polygon","coordinates":[[[104.9,29.1],[105.1,29.1],[105.1,29.3],[104.9,29.3],[104.9,29.1]]]}}`
	fZone     = `{"type":"Feature","properties":{"kind":"urban_zone","id":"UZ-1","name":"Town","jurisdiction":"510322"},"geometry":{"type":"Polygon","coordinates":[[[104.97,29.17],[105.0,29.17],[105.0,29.2],[104.97,29.17]]]}}`
	fStation  = `{"type":"Feature","properties":{"kind":"station","id":"ST-A","name":"Station A","jurisdiction":"510322","station_kind":"township","illustrative":true},"geometry":{"type":"Point","coordinates":[105.0,29.2]}}`
	fHospital = `{"type":"Feature","properties":{"kind":"hospital","id":"HP-A","name":"Hospital A","jurisdiction":"510322","level":"secondary","centres":["stroke"],"illustrative":true},"geometry":{"type":"Point","coordinates":[105.0,29.2]}}`
	fUnit     = `{"type":"Feature","properties":{"kind":"unit","id":"U-1","callsign":"Unit 1","station":"ST-A","jurisdiction":"510322","capabilities":["als"],"illustrative":true},"geometry":null}`
)

// base lists the valid features, in order: 0 city, 1 county, 2 zone,
// 3 station, 4 hospital, 5 unit.
var base = []string{fCity, fCounty, fZone, fStation, fHospital, fUnit}

// doc wraps features into an area file.
func doc(features ...string) string {
	return `{"type":"FeatureCollection","lifeline":{"version":1,"name":"Test"},"features":[` +
		strings.Join(features, ",\n") + "]}"
}

// with returns the base features with feature i replaced by the result of
// applying the old/new string pairs to it.
func with(i int, oldNew ...string) []string {
	f := slices.Clone(base)
	f[i] = strings.NewReplacer(oldNew...).Replace(f[i])
	if f[i] == base[i] {
		panic("with: replacement changed nothing in " + base[i])
	}
	return f
}

func TestDecodeValid(t *testing.T) {
	a, err := geojson.Decode(strings.NewReader(doc(base...)), "test.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(a.Jurisdictions)+len(a.Zones)+len(a.Stations)+len(a.Hospitals)+len(a.Units), len(base); got != want {
		t.Errorf("decoded %d entities, want %d", got, want)
	}
	j, zone, ok := a.Locate(orb.Point{104.98, 29.18})
	if !ok || j.ID != "510322" || zone != geo.Urban {
		t.Errorf("Locate(town) = %s, %s, %v; want 510322, urban, true", j.ID, zone, ok)
	}
	if j.Consent != "" {
		t.Errorf("consent policy %q without the property, want none (ask)", j.Consent)
	}
	a, err = geojson.Decode(strings.NewReader(doc(with(1, `"parent":"510300"`, `"parent":"510300","consent":"auto"`)...)), "test.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := a.Jurisdiction("510322"); j.Consent != dispatch.ConsentAuto {
		t.Errorf("consent policy %q, want auto", j.Consent)
	}
}

// TestDecodeRadii: a jurisdiction's radii and an urban zone's radius
// come through; absent ones stay zero, to be inherited.
func TestDecodeRadii(t *testing.T) {
	in := doc(slices.Concat(
		with(1, `"parent":"510300"`, `"parent":"510300","radius_urban_m":4000,"radius_rural_m":12000,"radius_rural_max_m":25000`)[:2],
		with(2, `"jurisdiction":"510322"`, `"jurisdiction":"510322","radius_m":3500`)[2:])...)
	a, err := geojson.Decode(strings.NewReader(in), "radii.geojson")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Jurisdictions[1].Radii, (geo.RadiusPolicy{Urban: 4000, Rural: 12000, RuralMax: 25000}); got != want {
		t.Errorf("county radii %+v, want %+v", got, want)
	}
	if got := a.Jurisdictions[0].Radii; got != (geo.RadiusPolicy{}) {
		t.Errorf("city radii %+v, want none", got)
	}
	if got := a.Zones[0].RadiusM; got != 3500 {
		t.Errorf("zone radius %v, want 3500", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	const name = "test.geojson"
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error, besides the file name
	}{
		{"unknown kind",
			doc(with(3, `"kind":"station"`, `"kind":"stationn"`)...),
			[]string{`feature 3: field "kind": "stationn" is not a kind`}},
		{"missing kind",
			doc(with(3, `"kind":"station",`, ``)...),
			[]string{`feature 3: field "kind": missing`}},
		{"unknown property",
			doc(with(3, `"jurisdiction"`, `"jurisdication"`)...),
			[]string{`feature 3 (station ST-A): field "jurisdication": unknown property`}},
		{"property of another kind",
			doc(with(3, `"illustrative":true`, `"illustrative":true,"level":"tertiary"`)...),
			[]string{`feature 3 (station ST-A): field "level": unknown property`}},
		{"wrong type bool",
			doc(with(3, `"illustrative":true`, `"illustrative":"yes"`)...),
			[]string{`feature 3 (station ST-A): field "illustrative": got string, want true or false`}},
		{"wrong type string",
			doc(with(4, `"level":"secondary"`, `"level":2`)...),
			[]string{`feature 4 (hospital HP-A): field "level": got number, want a string`}},
		{"wrong type array",
			doc(with(4, `["stroke"]`, `"stroke"`)...),
			[]string{`feature 4 (hospital HP-A): field "centres": got string, want an array of strings`}},
		{"wrong type id",
			doc(with(3, `"id":"ST-A"`, `"id":7`)...),
			[]string{`feature 3 (station): field "id": got number, want a string`}},
		{"missing id",
			doc(with(3, `"id":"ST-A",`, ``)...),
			[]string{`feature 3 (station): field "id": missing`}},
		{"missing jurisdiction id",
			doc(with(1, `"id":"510322",`, ``)...),
			[]string{`feature 1 (jurisdiction): field "id": missing`}},
		{"bad id",
			doc(with(3, `"id":"ST-A"`, `"id":"ST A"`)...),
			[]string{`feature 3 (station "ST A"): field "id": "ST A" is not 1-64 letters`}},
		{"missing name",
			doc(with(2, `"name":"Town",`, ``)...),
			[]string{`feature 2 (urban_zone UZ-1): field "name": missing`}},
		{"missing callsign",
			doc(with(5, `"callsign":"Unit 1"`, `"callsign":" "`)...),
			[]string{`feature 5 (unit U-1): field "callsign": missing`}},
		{"duplicate id",
			doc(append(slices.Clone(base), fStation)...),
			[]string{`feature 6 (station ST-A): field "id": duplicate of feature 3`}},
		{"duplicate jurisdiction",
			doc(with(0, `"510300"`, `"510322"`)...),
			[]string{`feature 1 (jurisdiction 510322): field "id": duplicate of feature 0`}},
		{"jurisdiction id not an adcode",
			doc(with(1, `"id":"510322"`, `"id":"fushun"`)...),
			[]string{`feature 1 (jurisdiction fushun): field "id": "fushun" is not a six-digit adcode`}},
		{"bad parent",
			doc(with(1, `"parent":"510300"`, `"parent":"510399"`)...),
			[]string{`feature 1 (jurisdiction 510322): field "parent": "510399" is not in the area`}},
		{"parent not an adcode",
			doc(with(1, `"parent":"510300"`, `"parent":"Zigong"`)...),
			[]string{`feature 1 (jurisdiction 510322): field "parent": "Zigong" is not a six-digit adcode`}},
		{"own parent",
			doc(with(1, `"parent":"510300"`, `"parent":"510322"`)...),
			[]string{`feature 1 (jurisdiction 510322): field "parent": a jurisdiction cannot be its own parent`}},
		{"parent loop",
			doc(with(0, `"name":"City"`, `"name":"City","parent":"510322"`)...),
			[]string{`feature 0 (jurisdiction 510300): field "parent": the chain of parents loops back to 510300`}},
		{"unknown consent policy",
			doc(with(1, `"parent":"510300"`, `"parent":"510300","consent":"always"`)...),
			[]string{`feature 1 (jurisdiction 510322): field "consent": "always" is not one of auto, ask`}},
		{"consent policy not a string",
			doc(with(1, `"parent":"510300"`, `"parent":"510300","consent":true`)...),
			[]string{`feature 1 (jurisdiction 510322): field "consent": got bool, want a string`}},
		{"jurisdiction not in area",
			doc(with(3, `"jurisdiction":"510322"`, `"jurisdiction":"510399"`)...),
			[]string{`feature 3 (station ST-A): field "jurisdiction": "510399" is not in the area`}},
		{"station outside its jurisdiction",
			doc(with(3, `[105.0,29.2]`, `[105.5,29.2]`)...),
			[]string{`feature 3 (station ST-A): field "geometry": point [105.5, 29.2] lies outside jurisdiction 510322 (County)`}},
		{"hospital outside its jurisdiction",
			doc(with(4, `[105.0,29.2]`, `[104.8,29.2]`)...),
			[]string{`feature 4 (hospital HP-A): field "geometry": point [104.8, 29.2] lies outside jurisdiction 510322`}},
		{"bad station kind",
			doc(with(3, `"township"`, `"clinic"`)...),
			[]string{`feature 3 (station ST-A): field "station_kind": "clinic" is not one of county_hospital, township`}},
		{"missing level",
			doc(with(4, `"level":"secondary",`, ``)...),
			[]string{`feature 4 (hospital HP-A): field "level": missing (want one of primary, secondary, tertiary)`}},
		{"unknown centre",
			doc(with(4, `["stroke"]`, `["stroke","burns"]`)...),
			[]string{`feature 4 (hospital HP-A): field "centres": unknown centre "burns" (want one of chest_pain`}},
		{"repeated centre",
			doc(with(4, `["stroke"]`, `["stroke","stroke"]`)...),
			[]string{`feature 4 (hospital HP-A): field "centres": "stroke" is listed twice`}},
		{"unknown capability",
			doc(with(5, `["als"]`, `["paramedic"]`)...),
			[]string{`feature 5 (unit U-1): field "capabilities": unknown capability "paramedic" (want one of als, bls, neonatal)`}},
		{"unit at unknown station",
			doc(with(5, `"station":"ST-A"`, `"station":"ST-X"`)...),
			[]string{`feature 5 (unit U-1): field "station": "ST-X" is not in the area`}},
		{"unit at another jurisdiction's station",
			doc(with(5, `"jurisdiction":"510322"`, `"jurisdiction":"510300"`)...),
			[]string{`feature 5 (unit U-1): field "station": ST-A belongs to jurisdiction 510322, not 510300`}},
		{"bad geometry type",
			doc(with(3, `"type":"Point","coordinates":[105.0,29.2]`, `"type":"LineString","coordinates":[[105.0,29.2],[105.01,29.2]]`)...),
			[]string{`feature 3 (station ST-A): field "geometry": got LineString, want Point`}},
		{"polygon for a station",
			doc(with(3, `{"type":"Point","coordinates":[105.0,29.2]}`, `{"type":"Polygon","coordinates":[[[105,29.2],[105.1,29.2],[105,29.3],[105,29.2]]]}`)...),
			[]string{`feature 3 (station ST-A): field "geometry": got Polygon, want Point`}},
		{"unknown geometry type",
			doc(with(3, `"type":"Point"`, `"type":"Circle"`)...),
			[]string{`feature 3 (station ST-A): field "geometry": "Circle" is not a GeoJSON geometry type`}},
		{"point for a unit",
			doc(with(5, `"geometry":null`, `"geometry":{"type":"Point","coordinates":[105.0,29.2]}`)...),
			[]string{`feature 5 (unit U-1): field "geometry": got Point, want null`}},
		{"zone without geometry",
			doc(with(2, `"geometry":{"type":"Polygon","coordinates":[[[104.97,29.17],[105.0,29.17],[105.0,29.2],[104.97,29.17]]]}`, `"geometry":null`)...),
			[]string{`feature 2 (urban_zone UZ-1): field "geometry": got null, want Polygon or MultiPolygon`}},
		{"station without geometry",
			doc(with(3, `"geometry":{"type":"Point","coordinates":[105.0,29.2]}`, `"geometry":null`)...),
			[]string{`feature 3 (station ST-A): field "geometry": got null, want Point`}},
		{"ring not closed",
			doc(with(2, `[105.0,29.2],[104.97,29.17]]`, `[105.0,29.2],[104.97,29.18]]`)...),
			[]string{`feature 2 (urban_zone UZ-1): field "geometry": ring 0 is not closed`}},
		{"ring too short",
			doc(with(2, `[[104.97,29.17],[105.0,29.17],[105.0,29.2],[104.97,29.17]]`, `[[104.97,29.17],[105.0,29.17],[104.97,29.17]]`)...),
			[]string{`feature 2 (urban_zone UZ-1): field "geometry": ring 0 has 3 positions, want at least 4`}},
		{"position out of range",
			doc(with(3, `[105.0,29.2]`, `[29.2,105.0]`)...),
			[]string{`feature 3 (station ST-A): field "geometry": position [29.2, 105] is out of range`}},
		{"position with one number",
			doc(with(3, `[105.0,29.2]`, `[105.0]`)...),
			[]string{`feature 3 (station ST-A): field "geometry": position [105] has 1 coordinates, want 2 ([lon, lat])`}},
		{"coordinates not numbers",
			doc(with(3, `[105.0,29.2]`, `["105.0","29.2"]`)...),
			[]string{`feature 3 (station ST-A): field "geometry": Point coordinates are not a position`}},
		{"unknown geometry member",
			doc(with(3, `"type":"Point",`, `"type":"Point","crs":null,`)...),
			[]string{`feature 3 (station ST-A): field "geometry": field "crs": unknown member`}},
		{"not a feature",
			doc(with(3, `"type":"Feature"`, `"type":"Place"`)...),
			[]string{`feature 3: type is "Place", want "Feature"`}},
		{"feature-level id",
			doc(with(3, `"type":"Feature",`, `"type":"Feature","id":"ST-A",`)...),
			[]string{`feature 3: field "id": unknown member (want one of type, properties, geometry, bbox)`}},
		{"properties not an object",
			doc(with(3, `"properties":{`, `"properties":[{`, `},"geometry"`, `}],"geometry"`)...),
			[]string{`feature 3: field "properties": not a JSON object`}},
		{"feature not an object",
			doc(append(slices.Clone(base), `"station"`)...),
			[]string{`feature 6: not a JSON object`}},
		{"truncated JSON",
			doc(base...)[:200],
			[]string{`invalid JSON: unexpected end of JSON input (truncated?)`}},
		{"syntax error",
			doc(with(3, `"name":"Station A",`, `"name":"Station A",,`)...),
			[]string{`invalid JSON at line 4, column 81: `, `invalid character ','`}},
		{"syntax error after wide characters",
			doc(with(3, `"name":"Station A",`, `"name":"站点甲",,`)...),
			[]string{`invalid JSON at line 4, column 75: `}},
		{"empty file",
			``,
			[]string{`invalid JSON`}},
		{"not an object",
			`[]`,
			[]string{`area test.geojson: not a JSON object`}},
		{"not a feature collection",
			strings.Replace(doc(base...), `"FeatureCollection"`, `"Feature"`, 1),
			[]string{`type is "Feature", want "FeatureCollection"`}},
		{"no lifeline member",
			strings.Replace(doc(base...), `"lifeline":{"version":1,"name":"Test"},`, ``, 1),
			[]string{`no "lifeline" member: not a Lifeline area file`}},
		{"unsupported version",
			strings.Replace(doc(base...), `"version":1`, `"version":2`, 1),
			[]string{`member "lifeline": version 2 is not supported (want 1)`}},
		{"unknown header member",
			strings.Replace(doc(base...), `"version":1`, `"version":1,"crs":"gcj02"`, 1),
			[]string{`member "lifeline": field "crs": unknown member`}},
		{"unknown top-level member",
			strings.Replace(doc(base...), `"type":"FeatureCollection"`, `"type":"FeatureCollection","name":"x"`, 1),
			[]string{`field "name": unknown member (want one of type, lifeline, features, bbox)`}},
		{"features not an array",
			strings.Replace(doc(base...), `"features":[`, `"features":{"a":[`, 1) + "}",
			[]string{`field "features": got object, want an array of JSON values`}},
		{"no jurisdictions",
			doc(),
			[]string{`no jurisdiction features`}},
		{"negative radius",
			doc(with(1, `"parent":"510300"`, `"parent":"510300","radius_urban_m":-5000`)...),
			[]string{`feature 1 (jurisdiction 510322): field "radius_urban_m": -5000 m is not a radius: want more than 0 and at most 100000 m`}},
		{"radius too large",
			doc(with(0, `"name":"City"`, `"name":"City","radius_rural_max_m":200000`)...),
			[]string{`feature 0 (jurisdiction 510300): field "radius_rural_max_m": 200000 m is not a radius`}},
		{"radius a string",
			doc(with(1, `"parent":"510300"`, `"parent":"510300","radius_rural_m":"10 km"`)...),
			[]string{`feature 1 (jurisdiction 510322): field "radius_rural_m": got string, want a number`}},
		{"rural radius above its widening",
			doc(with(1, `"parent":"510300"`, `"parent":"510300","radius_rural_m":15000,"radius_rural_max_m":12000`)...),
			[]string{`feature 1 (jurisdiction 510322): field "radius_rural_m": 15000 m is more than radius_rural_max_m 12000 m`}},
		{"zero zone radius",
			doc(with(2, `"jurisdiction":"510322"`, `"jurisdiction":"510322","radius_m":-1`)...),
			[]string{`feature 2 (urban_zone UZ-1): field "radius_m": -1 m is not a radius`}},
		{"radius on a station",
			doc(with(3, `"illustrative":true`, `"illustrative":true,"radius_m":5000`)...),
			[]string{`feature 3 (station ST-A): field "radius_m": unknown property`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := geojson.Decode(strings.NewReader(tt.in), name)
			if err == nil {
				t.Fatalf("Decode succeeded with %d units, want an error", len(a.Units))
			}
			if got, want := dispatch.ErrorCode(err), dispatch.CodeInvalid; got != want {
				t.Errorf("code %q, want %q (error %v)", got, want, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "invalid: area "+name+": ") {
				t.Errorf("error %q does not start with %q", msg, "invalid: area "+name+": ")
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q\ndoes not contain %q", msg, want)
				}
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	// A valid file padded with trailing spaces past the limit.
	in := io.MultiReader(strings.NewReader(doc(base...)), &spaces{n: geojson.MaxSize})
	_, err := geojson.Decode(in, "big.geojson")
	if err == nil || !errors.Is(err, dispatch.ErrInvalid) || !strings.Contains(err.Error(), "area big.geojson: file is larger than 32 MiB") {
		t.Fatalf("Decode of a %d MiB file = %v, want an invalid error naming the limit", geojson.MaxSize>>20, err)
	}
}

// spaces reads as n spaces.
type spaces struct{ n int }

func (s *spaces) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), s.n)
	for i := range k {
		p[i] = ' '
	}
	s.n -= k
	return k, nil
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := geojson.Decode(io.MultiReader(strings.NewReader("{"), &failing{boom}), "x.geojson")
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "area x.geojson") {
		t.Fatalf("Decode = %v, want the read error wrapped with the file name", err)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

func TestLoadFile(t *testing.T) {
	path := filepath.Join("testdata", "small.geojson")
	a, err := geojson.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Name, "Small example"; got != want {
		t.Errorf("name %q, want %q", got, want)
	}
	_, err = geojson.LoadFile(filepath.Join(t.TempDir(), "missing.geojson"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.geojson") {
		t.Errorf("LoadFile(missing) = %v, want a not-exist error naming the file", err)
	}
}

// TestGolden decodes the hand-written testdata/small.geojson, encodes it
// and compares the result with testdata/small.golden.geojson (rewritten
// with -update); the golden file must decode to the same area and encode
// to itself.
func TestGolden(t *testing.T) {
	in, err := geojson.LoadFile(filepath.Join("testdata", "small.geojson"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := geojson.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "small.golden.geojson")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Encode(small.geojson) differs from %s (run go test -update to accept):\n got: %s\nwant: %s", golden, got, want)
	}
	back, err := geojson.Decode(bytes.NewReader(want), golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("Decode(golden) = %+v\nwant %+v", back, in)
	}
	again, err := geojson.Encode(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, want) {
		t.Errorf("Encode(Decode(golden)) differs from the golden file:\n%s", again)
	}
}

// TestRoundTrip builds areas in Go and checks that Decode(Encode(a)) gives
// them back.
func TestRoundTrip(t *testing.T) {
	region := func(id, name string, g orb.Geometry) *geo.Region {
		t.Helper()
		r, err := geo.NewRegion(id, name, g)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	square := func(lon, lat, d float64) orb.Polygon {
		return orb.Polygon{{{lon, lat}, {lon + d, lat}, {lon + d, lat + d}, {lon, lat + d}, {lon, lat}}}
	}
	small := &dispatch.Area{
		Name: `A "quoted" <name> & more`,
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: "510300", Name: "City"},
			{ID: "510322", Name: "County", Parent: "510300", Consent: dispatch.ConsentAuto, Region: region("510322", "County", square(104.9, 29.1, 0.2)),
				Radii: geo.RadiusPolicy{Urban: 4500.5, Rural: 12000, RuralMax: 24000}},
			{ID: "510311", Name: "District", Parent: "510300", Consent: dispatch.ConsentAsk, Region: region("510311", "District",
				orb.MultiPolygon{square(104.7, 29.1, 0.1), square(104.75, 29.25, 0.02)})},
		},
		Zones: []dispatch.UrbanZone{
			{ID: "UZ-1", Name: "Town", Jurisdiction: "510322", Region: region("UZ-1", "Town", square(104.97, 29.17, 0.03)), RadiusM: 3000},
		},
		Stations: []dispatch.Station{
			{ID: "ST-A", Name: "A", Jurisdiction: "510322", Kind: "township", Location: orb.Point{105.0, 29.2}, Illustrative: true},
			{ID: "ST-B", Name: "B", Jurisdiction: "510300", Kind: "standalone", Location: orb.Point{-0.5, 51.5}},
		},
		Hospitals: []dispatch.Hospital{
			{ID: "HP-A", Name: "H", Jurisdiction: "510322", Level: "tertiary", Location: orb.Point{105.0, 29.2},
				Centres: slices.Clone(dispatch.Centres), Illustrative: true},
			{ID: "HP-B", Name: "H2", Jurisdiction: "510311", Level: "primary", Location: orb.Point{104.75, 29.15}},
		},
		Units: []dispatch.Unit{
			{ID: "U-1", Callsign: "One", Station: "ST-A", Jurisdiction: "510322", Capabilities: []string{"als", "neonatal"}, Illustrative: true},
			{ID: "U-2", Callsign: "Two", Jurisdiction: "510311"},
		},
	}
	tests := []struct {
		name string
		area *dispatch.Area
	}{
		{"small", small},
		{"demo", geojson.Demo()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := geojson.Encode(tt.area)
			if err != nil {
				t.Fatal(err)
			}
			got, err := geojson.Decode(bytes.NewReader(b), tt.name)
			if err != nil {
				t.Fatalf("Decode(Encode(area)): %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, tt.area) {
				t.Errorf("Decode(Encode(area)) = %+v\nwant %+v", got, tt.area)
			}
		})
	}
}

func TestEncodeNaN(t *testing.T) {
	a := &dispatch.Area{Name: "x", Stations: []dispatch.Station{{ID: "S", Location: orb.Point{nan(), 0}}}}
	if _, err := geojson.Encode(a); err == nil {
		t.Fatal("Encode of a NaN coordinate succeeded, want an error")
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}
