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
		name string
		d    Detour
		z    Zone
		want Route
	}{
		// 1350 m at 30 km/h is 162 s.
		{"default urban", DefaultETA, Urban, Route{Metres: 1350, Duration: 162 * time.Second}},
		// 1500 m at 50 km/h is 108 s.
		{"default rural", DefaultETA, Rural, Route{Metres: 1500, Duration: 108 * time.Second}},
		{"unknown zone drives like rural", DefaultETA, "", Route{Metres: 1500, Duration: 108 * time.Second}},
		{"straight road at walking pace", Detour{Urban: Profile{RoadFactor: 1, SpeedKmh: 3.6}}, Urban,
			Route{Metres: 1000, Duration: 1000 * time.Second}},
		{"no speed is unreachable", Detour{Urban: Profile{RoadFactor: 1.3}}, Urban,
			Route{Metres: 1300, Duration: math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.Estimate(from, to, tt.z)
			if math.Abs(got.Metres-tt.want.Metres) > 1e-6 {
				t.Errorf("Estimate().Metres = %v, want %v", got.Metres, tt.want.Metres)
			}
			if diff := got.Duration - tt.want.Duration; diff < -time.Millisecond || diff > time.Millisecond {
				t.Errorf("Estimate().Duration = %v, want %v", got.Duration, tt.want.Duration)
			}
		})
	}
}

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
				got := DefaultETA.Estimate(from, to, z)
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
		u, r := DefaultETA.Estimate(from, to, Urban), DefaultETA.Estimate(from, to, Rural)
		if u.Duration <= r.Duration {
			t.Errorf("urban Estimate() = %v, want more than rural %v", u.Duration, r.Duration)
		}
	})
}
