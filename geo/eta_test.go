package geo

import (
	"math"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// pointNorth returns the point metres north of p.
func pointNorth(p orb.Point, metres float64) orb.Point {
	return orb.Point{p[0], p[1] + metres/(EarthRadius*radians)}
}

func TestDetourEstimate(t *testing.T) {
	from := orb.Point{105.0, 29.15}
	to := pointNorth(from, 1000)
	tests := []struct {
		name   string
		d      Detour
		fz, tz Zone
		want   Route
	}{
		// 1350 m at 30 km/h is 162 s.
		{"default urban", DefaultETA, Urban, Urban, Route{Metres: 1350, Duration: 162 * time.Second}},
		// 1500 m at 50 km/h is 108 s.
		{"default rural", DefaultETA, Rural, Rural, Route{Metres: 1500, Duration: 108 * time.Second}},
		{"unknown zone drives like rural", DefaultETA, "", Rural, Route{Metres: 1500, Duration: 108 * time.Second}},
		// 675 m at 30 km/h (81 s) and 750 m at 50 km/h (54 s).
		{"rural unit to an urban call goes half of the way at each", DefaultETA, Rural, Urban, Route{Metres: 1425, Duration: 135 * time.Second}},
		{"and the other way the same", DefaultETA, Urban, Rural, Route{Metres: 1425, Duration: 135 * time.Second}},
		{"straight road at walking pace", Detour{Urban: Profile{RoadFactor: 1, SpeedKmh: 3.6}}, Urban, Urban,
			Route{Metres: 1000, Duration: 1000 * time.Second}},
		{"no speed is unreachable", Detour{Urban: Profile{RoadFactor: 1.3}}, Urban, Urban,
			Route{Metres: 1300, Duration: math.MaxInt64}},
		{"half of the way without speed is unreachable", Detour{Urban: Profile{RoadFactor: 1.3}, Rural: Profile{RoadFactor: 1, SpeedKmh: 36}}, Rural, Urban,
			Route{Metres: 1150, Duration: math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.Estimate(from, to, tt.fz, tt.tz)
			if math.Abs(got.Metres-tt.want.Metres) > 1e-6 {
				t.Errorf("Estimate().Metres = %v, want %v", got.Metres, tt.want.Metres)
			}
			if diff := got.Duration - tt.want.Duration; diff < -time.Millisecond || diff > time.Millisecond {
				t.Errorf("Estimate().Duration = %v, want %v", got.Duration, tt.want.Duration)
			}
		})
	}
}

// TestDetourMonotonic: between two given zones the estimate grows with
// the distance (across zones it need not: see TestMinDuration).
func TestDetourMonotonic(t *testing.T) {
	to := orb.Point{105.0, 29.15}
	for _, z := range []Zone{Urban, Rural} {
		t.Run(string(z), func(t *testing.T) {
			var prev Route
			for m := 0.0; m <= 60000; m += 0.5 {
				// From every direction: only the distance may matter.
				from := pointNorth(to, m)
				if int(m)%2 == 1 {
					from = pointNorth(to, -m)
				}
				got := DefaultETA.Estimate(from, to, z, z)
				if got.Metres < prev.Metres || got.Duration < prev.Duration {
					t.Fatalf("Estimate() at %v m = %+v, less than %+v nearer", m, got, prev)
				}
				if m > 0 && (got.Metres <= prev.Metres || got.Duration <= prev.Duration) {
					t.Fatalf("Estimate() at %v m = %+v, no more than %+v half a metre nearer", m, got, prev)
				}
				prev = got
			}
		})
	}
	t.Run("urban is slower per metre than rural", func(t *testing.T) {
		from := pointNorth(to, 5000)
		u, r := DefaultETA.Estimate(from, to, Urban, Urban), DefaultETA.Estimate(from, to, Rural, Rural)
		if u.Duration <= r.Duration {
			t.Errorf("urban Estimate() = %v, want more than rural %v", u.Duration, r.Duration)
		}
	})
}

// TestMinDuration: MinDuration is a lower bound of every estimate, for
// every pair of zones, never decreasing, and close to the fastest drive.
func TestMinDuration(t *testing.T) {
	to := orb.Point{105.0, 29.15}
	zones := []Zone{Urban, Rural, ""}
	models := map[string]Detour{
		"default":            DefaultETA,
		"urban faster":       {Urban: Profile{RoadFactor: 1, SpeedKmh: 90}, Rural: Profile{RoadFactor: 2, SpeedKmh: 20}},
		"no urban speed":     {Urban: Profile{RoadFactor: 1.3}, Rural: DefaultETA.Rural},
		"odd factors":        {Urban: Profile{RoadFactor: 1.0000001, SpeedKmh: 33.3}, Rural: Profile{RoadFactor: 1.7, SpeedKmh: 61.7}},
		"neither has speed":  {},
		"one metre a second": {Urban: Profile{RoadFactor: 1, SpeedKmh: 3.6}, Rural: Profile{RoadFactor: 1, SpeedKmh: 3.6}},
	}
	for name, d := range models {
		t.Run(name, func(t *testing.T) {
			prev := time.Duration(0)
			for m := 0.0; m <= 200000; m += 7.3 {
				from := pointNorth(to, m)
				crow := Distance(from, to)
				lb := d.MinDuration(crow)
				if lb < prev {
					t.Fatalf("MinDuration(%v) = %v, less than %v nearer", crow, lb, prev)
				}
				if lb < 0 {
					t.Fatalf("MinDuration(%v) = %v", crow, lb)
				}
				prev = lb
				for _, fz := range zones {
					for _, tz := range zones {
						if got := d.Estimate(from, to, fz, tz).Duration; got < lb {
							t.Fatalf("Estimate(%v m, %q -> %q) = %v, below MinDuration %v", crow, fz, tz, got, lb)
						}
					}
				}
			}
		})
	}
	t.Run("the bound is the faster profile", func(t *testing.T) {
		from := pointNorth(to, 10000)
		want := DefaultETA.Estimate(from, to, Rural, Rural).Duration
		if got := DefaultETA.MinDuration(Distance(from, to)); want-got > time.Millisecond || got > want {
			t.Errorf("MinDuration = %v, want just under %v", got, want)
		}
	})
}
