package geojson_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/geo"
)

// The DataV "center" points (GCJ-02) of Fushun County, whose seat is 富世,
// and of 自流井区, Zigong's central district.
var (
	fushunSeatGCJ  = orb.Point{104.984256, 29.181282}
	ziliujingGCJ   = orb.Point{104.778188, 29.343231}
	fushunSeat     = geo.GCJ02ToWGS84(fushunSeatGCJ)
	ziliujingPoint = geo.GCJ02ToWGS84(ziliujingGCJ)
)

// sourceFile is the DataV/AMap boundary file the demo is generated from,
// where it sits when the repository is checked out next to shared/.
var sourceFile = filepath.Join("..", "..", "..", "shared", "data", "areas", "510300_full.json")

func TestDemo(t *testing.T) {
	a := geojson.Demo()
	if err := a.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got, want := len(a.Units), 18; got != want {
		t.Errorf("%d units, want %d", got, want)
	}
	if got, want := len(a.Jurisdictions), 7; got != want {
		t.Errorf("%d jurisdictions, want %d (Zigong and its six districts and counties)", got, want)
	}
	for _, j := range a.Jurisdictions {
		if j.ID != "510300" && (j.Parent != "510300" || j.Region == nil) {
			t.Errorf("jurisdiction %s %s: parent %q, region %v; want 510300 and a boundary", j.ID, j.Name, j.Parent, j.Region != nil)
		}
	}
	regionOf := func(id string) *geo.Region {
		t.Helper()
		j, ok := a.Jurisdiction(id)
		if !ok || j.Region == nil {
			t.Fatalf("jurisdiction %s: missing or without a boundary", id)
		}
		return j.Region
	}
	for _, s := range a.Stations {
		if !regionOf(s.Jurisdiction).Contains(s.Location) || !s.Illustrative {
			t.Errorf("station %s %s at %v: want inside %s and illustrative", s.ID, s.Name, s.Location, s.Jurisdiction)
		}
	}
	for _, h := range a.Hospitals {
		if !regionOf(h.Jurisdiction).Contains(h.Location) || !h.Illustrative {
			t.Errorf("hospital %s %s at %v: want inside %s and illustrative", h.ID, h.Name, h.Location, h.Jurisdiction)
		}
	}
	perStation := map[string][]dispatch.Unit{}
	for _, u := range a.Units {
		s, ok := a.Station(u.Station)
		if !ok || u.Jurisdiction != "510322" || s.Jurisdiction != "510322" || !u.Illustrative {
			t.Errorf("unit %s: station %q, jurisdiction %s; want a Fushun station and jurisdiction 510322, illustrative", u.ID, u.Station, u.Jurisdiction)
		}
		perStation[u.Station] = append(perStation[u.Station], u)
	}
	countHas := func(units []dispatch.Unit, c string) (n int) {
		for _, u := range units {
			if u.Has(c) {
				n++
			}
		}
		return n
	}
	if rm := perStation["ST-FSRM"]; len(rm) != 4 || countHas(rm, dispatch.ALS) != 2 || countHas(rm, dispatch.NeoCare) != 1 {
		t.Errorf("county people's hospital has %d units (%d ALS, %d neonatal), want 4 (2 ALS, 1 neonatal)",
			len(rm), countHas(rm, dispatch.ALS), countHas(rm, dispatch.NeoCare))
	}
	if got := len(perStation["ST-FSZY"]); got != 2 {
		t.Errorf("TCM hospital has %d units, want 2", got)
	}
}

func TestDemoLocate(t *testing.T) {
	a := geojson.Demo()
	rural := orb.Point{105.05, 29.07}
	if d := geo.Distance(fushunSeat, rural); d < 12000 || d > 18000 {
		t.Fatalf("the rural test point is %.0f m from the seat, want about 15 km", d)
	}
	tests := []struct {
		name         string
		p            orb.Point
		jurisdiction string
		zone         geo.Zone
	}{
		{"county seat", fushunSeat, "510322", geo.Urban},
		{"15 km out of the seat", rural, "510322", geo.Rural},
		{"Ziliujing", ziliujingPoint, "510302", geo.Rural},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, zone, ok := a.Locate(tt.p)
			if !ok || j.ID != tt.jurisdiction || zone != tt.zone {
				t.Errorf("Locate(%v) = %s, %s, %v; want %s, %s, true", tt.p, j.ID, zone, ok, tt.jurisdiction, tt.zone)
			}
		})
	}
	if _, _, ok := a.Locate(orb.Point{104.06, 30.66}); ok { // Chengdu
		t.Error("Locate(Chengdu) found a jurisdiction, want none")
	}
}

// TestDemoConverted checks that the boundaries were moved from GCJ-02 to
// WGS-84: a vertex of Fushun's boundary lies the few hundred metres of the
// GCJ-02 offset away from the same vertex in the source file.
func TestDemoConverted(t *testing.T) {
	data, err := os.ReadFile(sourceFile)
	if err != nil {
		t.Fatalf("the demo's source boundaries are missing (%v): check out the repository next to shared/, as in CI", err)
	}
	var src struct {
		Features []struct {
			Properties struct {
				Adcode int `json:"adcode"`
			} `json:"properties"`
			Geometry struct {
				Coordinates [][][][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(data, &src); err != nil {
		t.Fatal(err)
	}
	var raw orb.Point
	for _, f := range src.Features {
		if f.Properties.Adcode == 510322 {
			raw = f.Geometry.Coordinates[0][0][0]
		}
	}
	j, _ := geojson.Demo().Jurisdiction("510322")
	got := j.Region.Geometry()[0][0][0]
	if d := geo.Distance(raw, got); d < 100 || d > 700 {
		t.Errorf("first vertex of 510322: %v in the demo, %v (GCJ-02) in the source, %.0f m apart; want 100-700 m", got, raw, d)
	}
	if d := geo.Distance(geo.GCJ02ToWGS84(raw), got); d > 0.2 {
		t.Errorf("first vertex of 510322 is %.2f m from the WGS-84 conversion of the source's, want within rounding", d)
	}
}

func TestDemoIsACopy(t *testing.T) {
	a := geojson.Demo()
	a.Units[0].Capabilities[0] = "changed"
	a.Hospitals[0].Centres[0] = "changed"
	a.Stations = nil
	b := geojson.Demo()
	if b.Units[0].Capabilities[0] == "changed" || b.Hospitals[0].Centres[0] == "changed" || len(b.Stations) == 0 {
		t.Error("changing one Demo() changed the next")
	}
	raw := geojson.DemoBytes()
	raw[0] = 'x'
	if bytes.Equal(raw, geojson.DemoBytes()) {
		t.Error("changing DemoBytes() changed the embedded file")
	}
}

func TestDemoBytes(t *testing.T) {
	a, err := geojson.Decode(bytes.NewReader(geojson.DemoBytes()), "demo.geojson")
	if err != nil {
		t.Fatal(err)
	}
	b, err := geojson.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, geojson.DemoBytes()) {
		t.Error("Encode(Decode(DemoBytes())) differs from DemoBytes(): the demo is not in canonical form")
	}
}
