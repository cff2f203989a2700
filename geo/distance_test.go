package geo

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
)

func TestDistance(t *testing.T) {
	tests := []struct {
		name string
		a, b orb.Point
		want float64 // metres
		tol  float64 // relative
	}{
		{"same point", orb.Point{105, 29.15}, orb.Point{105, 29.15}, 0, 0},
		{"one degree of latitude", orb.Point{105, 29}, orb.Point{105, 30}, 111195.08, 1e-6},
		{"one degree of longitude at the equator", orb.Point{0, 0}, orb.Point{1, 0}, 111195.08, 1e-6},
		{"half the equator", orb.Point{0, 0}, orb.Point{180, 0}, math.Pi * EarthRadius, 1e-12},
		{"pole to pole", orb.Point{0, -90}, orb.Point{0, 90}, math.Pi * EarthRadius, 1e-12},
		// Geodesic on WGS-84 is about 1067 km.
		{"Beijing to Shanghai", orb.Point{116.4074, 39.9042}, orb.Point{121.4737, 31.2304}, 1067e3, 0.005},
		// Geodesic on WGS-84 is 5585 km.
		{"London to New York", orb.Point{-0.1278, 51.5074}, orb.Point{-74.0060, 40.7128}, 5585e3, 0.005},
		{"across the antimeridian", orb.Point{179.5, 0}, orb.Point{-179.5, 0}, 111195.08, 1e-6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Distance(tt.a, tt.b)
			if math.Abs(got-tt.want) > tt.tol*tt.want {
				t.Errorf("Distance(%v, %v) = %.1f, want %.1f ± %.2f%%", tt.a, tt.b, got, tt.want, tt.tol*100)
			}
			if back := Distance(tt.b, tt.a); back != got {
				t.Errorf("Distance(%v, %v) = %v, want %v as the other way round", tt.b, tt.a, back, got)
			}
		})
	}
}

func TestValidLatLon(t *testing.T) {
	tests := []struct {
		name     string
		lat, lon float64
		want     bool
	}{
		{"Fushun", 29.15, 105.0, true},
		{"corners", 90, 180, true},
		{"other corners", -90, -180, true},
		{"lat too big", 90.0001, 0, false},
		{"lat too small", -90.0001, 0, false},
		{"lon too big", 0, 180.0001, false},
		{"lon too small", 0, -180.0001, false},
		{"swapped lon and lat", 105.0, 29.15, false},
		{"NaN lat", math.NaN(), 0, false},
		{"NaN lon", 0, math.NaN(), false},
		{"infinite lat", math.Inf(1), 0, false},
		{"infinite lon", 0, math.Inf(-1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidLatLon(tt.lat, tt.lon); got != tt.want {
				t.Errorf("ValidLatLon(%v, %v) = %v, want %v", tt.lat, tt.lon, got, tt.want)
			}
		})
	}
}

func BenchmarkDistance(b *testing.B) {
	p, q := orb.Point{105.0, 29.15}, orb.Point{105.1, 29.2}
	b.ReportAllocs()
	for b.Loop() {
		Distance(p, q)
	}
}
