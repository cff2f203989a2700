package geo

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
)

// Published test vectors of the GCJ-02 formula (github.com/googollee/eviltransform).
var gcjVectors = []struct {
	name     string
	wgs, gcj orb.Point
}{
	{"Shanghai", orb.Point{121.5272106, 31.1774276}, orb.Point{121.531541859215, 31.17530398364597}},
	{"Shenzhen", orb.Point{113.912316, 22.543847}, orb.Point{113.9171764808363, 22.540796131694766}},
	{"Beijing", orb.Point{116.377817, 39.911954}, orb.Point{116.38404722455657, 39.91334545536069}},
}

func TestWGS84ToGCJ02(t *testing.T) {
	for _, tt := range gcjVectors {
		t.Run(tt.name, func(t *testing.T) {
			got := WGS84ToGCJ02(tt.wgs)
			if math.Abs(got[0]-tt.gcj[0]) > 1e-9 || math.Abs(got[1]-tt.gcj[1]) > 1e-9 {
				t.Errorf("WGS84ToGCJ02(%v) = %v, want %v", tt.wgs, got, tt.gcj)
			}
		})
	}
}

func TestGCJ02ToWGS84(t *testing.T) {
	for _, tt := range gcjVectors {
		t.Run(tt.name, func(t *testing.T) {
			got := GCJ02ToWGS84(tt.gcj)
			if d := Distance(got, tt.wgs); d > 0.01 {
				t.Errorf("GCJ02ToWGS84(%v) = %v, %.3f m from want %v", tt.gcj, got, d, tt.wgs)
			}
		})
	}
}

// TestGCJ02RoundTrip converts a grid of points across China both ways.
func TestGCJ02RoundTrip(t *testing.T) {
	const maxErr = 0.05 // metres; the contract is 0.5
	worst := 0.0
	for lon := 73.0; lon <= 135; lon += 0.5 {
		for lat := 18.0; lat <= 54; lat += 0.5 {
			p := orb.Point{lon, lat}
			if OutOfChina(p) {
				t.Fatalf("OutOfChina(%v) = true, want false", p)
			}
			gcj := WGS84ToGCJ02(p)
			if got := GCJ02ToWGS84(gcj); Distance(got, p) > maxErr {
				t.Errorf("GCJ02ToWGS84(WGS84ToGCJ02(%v)) = %v, %.3f m off", p, got, Distance(got, p))
			} else {
				worst = max(worst, Distance(got, p))
			}
			// The same point read as GCJ-02 must convert back too.
			if got := WGS84ToGCJ02(GCJ02ToWGS84(p)); Distance(got, p) > maxErr {
				t.Errorf("WGS84ToGCJ02(GCJ02ToWGS84(%v)) = %v, %.3f m off", p, got, Distance(got, p))
			}
		}
	}
	t.Logf("worst round-trip error %.2g m", worst)
}

func TestGCJ02OffsetInSichuan(t *testing.T) {
	tests := []struct {
		name string
		p    orb.Point
	}{
		{"Fushun County", orb.Point{104.99, 29.18}},
		{"Zigong", orb.Point{104.78, 29.34}},
		{"Chengdu", orb.Point{104.066, 30.572}},
		{"Luzhou", orb.Point{105.44, 28.87}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Distance(tt.p, WGS84ToGCJ02(tt.p))
			if got < 100 || got > 700 {
				t.Errorf("Distance(p, WGS84ToGCJ02(p)) = %.0f m, want 100-700 m", got)
			}
		})
	}
}

func TestOutOfChina(t *testing.T) {
	tests := []struct {
		name string
		p    orb.Point
		want bool
	}{
		{"Fushun", orb.Point{105.0, 29.15}, false},
		{"Urumqi", orb.Point{87.6, 43.8}, false},
		{"Harbin", orb.Point{126.6, 45.8}, false},
		{"London", orb.Point{-0.1278, 51.5074}, true},
		{"Moscow", orb.Point{37.62, 55.75}, true},
		{"Tokyo", orb.Point{139.69, 35.68}, true},
		{"Sydney", orb.Point{151.21, -33.87}, true},
		{"just west", orb.Point{72.0039, 30}, true},
		{"just east", orb.Point{137.8348, 30}, true},
		{"just south", orb.Point{105, 0.8292}, true},
		{"just north", orb.Point{105, 55.8272}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OutOfChina(tt.p); got != tt.want {
				t.Errorf("OutOfChina(%v) = %v, want %v", tt.p, got, tt.want)
			}
			if !tt.want {
				return
			}
			if got := WGS84ToGCJ02(tt.p); got != tt.p {
				t.Errorf("WGS84ToGCJ02(%v) = %v, want it unchanged", tt.p, got)
			}
			if got := GCJ02ToWGS84(tt.p); got != tt.p {
				t.Errorf("GCJ02ToWGS84(%v) = %v, want it unchanged", tt.p, got)
			}
		})
	}
}

func TestGCJ02ToWGS84Geometry(t *testing.T) {
	// Two townships in GCJ-02, the second with a hole, as DataV ships them.
	mp := orb.MultiPolygon{
		{{{104.90, 29.10}, {105.00, 29.10}, {105.00, 29.20}, {104.90, 29.20}, {104.90, 29.10}}},
		{
			{{105.10, 29.00}, {105.30, 29.00}, {105.30, 29.25}, {105.10, 29.25}, {105.10, 29.00}},
			{{105.15, 29.05}, {105.15, 29.10}, {105.20, 29.10}, {105.20, 29.05}, {105.15, 29.05}},
		},
	}
	orig := mp.Clone()

	got, ok := GCJ02ToWGS84Geometry(mp).(orb.MultiPolygon)
	if !ok {
		t.Fatalf("GCJ02ToWGS84Geometry() returned %T, want orb.MultiPolygon", GCJ02ToWGS84Geometry(mp))
	}
	if !orb.Equal(mp, orig) {
		t.Fatalf("GCJ02ToWGS84Geometry() modified its input: %v, want %v", mp, orig)
	}
	if len(got) != len(mp) {
		t.Fatalf("GCJ02ToWGS84Geometry() has %d polygons, want %d", len(got), len(mp))
	}
	for i := range mp {
		if len(got[i]) != len(mp[i]) {
			t.Fatalf("polygon %d has %d rings, want %d", i, len(got[i]), len(mp[i]))
		}
		for j := range mp[i] {
			if len(got[i][j]) != len(mp[i][j]) {
				t.Fatalf("polygon %d ring %d has %d points, want %d", i, j, len(got[i][j]), len(mp[i][j]))
			}
			for k, p := range mp[i][j] {
				if want := GCJ02ToWGS84(p); got[i][j][k] != want {
					t.Errorf("point [%d][%d][%d] = %v, want %v", i, j, k, got[i][j][k], want)
				}
				if d := Distance(got[i][j][k], p); d < 100 || d > 700 {
					t.Errorf("point [%d][%d][%d] moved %.0f m, want 100-700 m", i, j, k, d)
				}
			}
			if r := got[i][j]; !r.Closed() {
				t.Errorf("polygon %d ring %d is no longer closed", i, j)
			}
		}
	}
	// The copy must not share memory with the input.
	got[0][0][0] = orb.Point{0, 0}
	if !orb.Equal(mp, orig) {
		t.Errorf("the result shares points with the input")
	}
	if r, err := NewRegion("t", "converted", GCJ02ToWGS84Geometry(orig)); err != nil {
		t.Errorf("NewRegion(converted) error = %v, want nil", err)
	} else if !r.Contains(GCJ02ToWGS84(orb.Point{105.25, 29.2})) || r.Contains(GCJ02ToWGS84(orb.Point{105.17, 29.07})) {
		t.Errorf("converted region lost its shape or its hole")
	}
}

func TestGCJ02ToWGS84GeometryTypes(t *testing.T) {
	p, q := orb.Point{105.0, 29.15}, orb.Point{105.1, 29.2}
	wp, wq := GCJ02ToWGS84(p), GCJ02ToWGS84(q)
	ring := orb.Ring{p, q, {105.1, 29.15}, p}
	wring := orb.Ring{wp, wq, GCJ02ToWGS84(orb.Point{105.1, 29.15}), wp}
	tests := []struct {
		name string
		in   orb.Geometry
		want orb.Geometry
	}{
		{"Point", p, wp},
		{"MultiPoint", orb.MultiPoint{p, q}, orb.MultiPoint{wp, wq}},
		{"LineString", orb.LineString{p, q}, orb.LineString{wp, wq}},
		{"MultiLineString", orb.MultiLineString{{p, q}, {q, p}}, orb.MultiLineString{{wp, wq}, {wq, wp}}},
		{"Ring", ring, wring},
		{"Polygon", orb.Polygon{ring}, orb.Polygon{wring}},
		{"Collection", orb.Collection{p, orb.LineString{p, q}, orb.Polygon{ring}},
			orb.Collection{wp, orb.LineString{wp, wq}, orb.Polygon{wring}}},
		{"Bound", orb.Bound{Min: p, Max: q}, orb.Bound{Min: wp, Max: wq}},
		{"outside China", orb.LineString{{2.35, 48.86}, {-0.13, 51.51}}, orb.LineString{{2.35, 48.86}, {-0.13, 51.51}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GCJ02ToWGS84Geometry(tt.in); !orb.Equal(got, tt.want) {
				t.Errorf("GCJ02ToWGS84Geometry(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		if got := GCJ02ToWGS84Geometry(nil); got != nil {
			t.Errorf("GCJ02ToWGS84Geometry(nil) = %v, want nil", got)
		}
	})
}

func BenchmarkGCJ02ToWGS84(b *testing.B) {
	p := WGS84ToGCJ02(orb.Point{105.0, 29.15})
	b.ReportAllocs()
	for b.Loop() {
		GCJ02ToWGS84(p)
	}
}
