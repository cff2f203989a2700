package geojson_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
)

// FuzzDecode feeds Decode arbitrary bytes: it must never panic, every error
// must be an invalid-area error, and every area it returns must pass
// Validate and survive Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(doc(base...)))
	for i := range base {
		f.Add([]byte(doc(slices.Delete(slices.Clone(base), i, i+1)...)))
	}
	for _, name := range []string{"small.geojson", "small.golden.geojson"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"FeatureCollection","lifeline":{"version":1,"name":"x"},"features":[` +
		`{"type":"Feature","properties":{"kind":"jurisdiction","id":"000001","name":"a","parent":"000002"},"geometry":null},` +
		`{"type":"Feature","properties":{"kind":"jurisdiction","id":"000002","name":"b","parent":"000001"},"geometry":null}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","lifeline":{"version":1,"name":"x"},"features":[` +
		`{"type":"Feature","properties":{"kind":"jurisdiction","id":"000001","name":"a"},"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]],[[0.1,0.1],[0.2,0.1],[0.2,0.2],[0.1,0.1]]]]}},` +
		`{"type":"Feature","properties":{"kind":"station","id":"s","name":"s","jurisdiction":"000001","station_kind":"village"},"geometry":{"type":"Point","coordinates":[0.9,0.1,12]}},` +
		`{"type":"Feature","properties":{"kind":"unit","id":"u","callsign":"u","jurisdiction":"000001"},"geometry":null}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","lifeline":{"version":1,"name":"x"},"features":[{"type":"Feature","properties":{"kind":"jurisdiction","id":"510322","name":"a"},"geometry":{"type":"GeometryCollection","geometries":[]}}]}`))
	f.Add([]byte(doc(with(1, `"parent":"510300"`, `"parent":"510300","consent":"auto"`)...)))
	f.Add([]byte(`{"type":"FeatureCollection","lifeline":{"version":1,"name":"x"},"features":[` +
		`{"type":"Feature","properties":{"kind":"jurisdiction","id":"510300","name":"c","radius_urban_m":4000,"radius_rural_max_m":30000},"geometry":null},` +
		`{"type":"Feature","properties":{"kind":"jurisdiction","id":"510322","name":"a","parent":"510300","radius_rural_m":12000.5,"radius_rural_max_m":1e4},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},` +
		`{"type":"Feature","properties":{"kind":"urban_zone","id":"z","name":"z","jurisdiction":"510322","radius_m":2500},"geometry":{"type":"Polygon","coordinates":[[[0.1,0.1],[0.2,0.1],[0.2,0.2],[0.1,0.1]]]}}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"type":"FeatureCollection","features":null,"lifeline":null}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := geojson.Decode(bytes.NewReader(data), "fuzz")
		if err != nil {
			if code := dispatch.ErrorCode(err); code != dispatch.CodeInvalid {
				t.Fatalf("error code %q, want invalid: %v", code, err)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("Decode returned an area that fails Validate: %v", err)
		}
		b, err := geojson.Encode(a)
		if err != nil {
			t.Fatalf("Encode of a decoded area: %v", err)
		}
		back, err := geojson.Decode(bytes.NewReader(b), "re-encoded")
		if err != nil {
			t.Fatalf("Decode(Encode(area)): %v\n%s", err, b)
		}
		again, err := geojson.Encode(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Encode is not stable across Decode:\n%s\n%s", b, again)
		}
	})
}
