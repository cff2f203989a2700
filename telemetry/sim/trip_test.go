package sim

import (
	"math"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

var station = orb.Point{104.97, 29.18} // Fushun County town

// uRegion is a U open to the north: two 1 km wide arms, 5 km tall, joined
// by a 1 km strip along the south, 3 km apart. The straight line between
// the tops of the arms crosses the gap.
func uRegion(tb testing.TB) *geo.Region {
	tb.Helper()
	o := station
	p := func(east, north float64) orb.Point { return offset(o, east*1000, north*1000) }
	ring := orb.Ring{p(0, 0), p(5, 0), p(5, 5), p(4, 5), p(4, 1), p(1, 1), p(1, 5), p(0, 5), p(0, 0)}
	r, err := geo.NewRegion("u", "U", orb.Polygon{ring})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// nearlyInside reports whether p lies inside r or within 25 m of it: route
// samples legs, so a drive may cut a corner of the border by a few metres.
func nearlyInside(r *geo.Region, p orb.Point) bool {
	if r.Contains(p) {
		return true
	}
	for a := 0.0; a < 2*math.Pi; a += math.Pi / 4 {
		if r.Contains(offset(p, 25*math.Sin(a), 25*math.Cos(a))) {
			return true
		}
	}
	return false
}

func TestTrip(t *testing.T) {
	u := uRegion(t)
	inU := u.Contains
	km := func(east, north float64) orb.Point { return offset(station, east*1000, north*1000) }
	tests := []struct {
		name      string
		from, to  orb.Point
		cruiseKmh float64
		wig       wiggle
		inside    func(orb.Point) bool
	}{
		{"straight east", station, km(10, 0), 50, wiggle{}, nil},
		{"weaving north", station, km(0, 8), 50, wiggle{Amp: 25, Wavelength: 400, Phase: 1}, nil},
		{"short, never cruising", station, km(0.05, 0.05), 60, wiggle{Amp: 10, Wavelength: 300}, nil},
		{"standing", station, station, 50, wiggle{Amp: 10, Wavelength: 300}, nil},
		{"across a U stays inside", km(0.5, 4.5), km(4.5, 4.5), 50, wiggle{Amp: 25, Wavelength: 500, Phase: 2}, inU},
		{"out of the U goes straight", km(0.5, 4.5), km(2.5, 4.5), 50, wiggle{Amp: 25, Wavelength: 500}, inU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrip(route(tt.from, tt.to, tt.inside), tt.cruiseKmh, tt.wig, tt.inside)
			total := tr.Duration()
			if total < 0 {
				t.Fatalf("Duration() = %v", total)
			}
			wantInside := tt.inside != nil && tt.inside(tt.from) && tt.inside(tt.to)

			const dt = time.Second
			prev, _, _ := tr.At(0)
			if d := geo.Distance(prev, tt.from); d > 0.01 {
				t.Errorf("At(0) is %.2f m from the start", d)
			}
			for d := dt; d <= total+2*dt; d += dt {
				p, speed, heading := tr.At(d)
				if speed < 0 || speed > tt.cruiseKmh+1e-9 {
					t.Fatalf("At(%v) speed = %.2f km/h, want 0 to %.0f", d, speed, tt.cruiseKmh)
				}
				if heading < 0 || heading >= 360 {
					t.Fatalf("At(%v) heading = %.2f, want [0, 360)", d, heading)
				}
				// What the server sees: distance over time, weave included.
				if moved := geo.Distance(prev, p) / dt.Seconds() * 3.6; moved > tt.cruiseKmh*1.15+1 {
					t.Fatalf("At(%v) moved at %.1f km/h, cruise %.0f", d, moved, tt.cruiseKmh)
				}
				if wantInside && !nearlyInside(u, p) {
					t.Fatalf("At(%v) = %v is outside the bounds", d, p)
				}
				prev = p
			}
			end, speed, _ := tr.At(total + time.Hour)
			if d := geo.Distance(end, tt.to); d > 0.01 || speed != 0 {
				t.Errorf("after the trip: %.2f m from the target at %.1f km/h, want 0 and 0", d, speed)
			}
			if l := geo.Distance(tt.from, tt.to); l > 500 {
				// A trip longer than its acceleration runs at cruise
				// speed most of the way: within a fifth of the ideal time.
				ideal := seconds(tr.length / (tt.cruiseKmh / 3.6))
				if total < ideal || total > ideal+ideal/5+time.Minute {
					t.Errorf("Duration() = %v for %.0f m at %.0f km/h (ideal %v)", total, tr.length, tt.cruiseKmh, ideal)
				}
			}
		})
	}
}

func TestTripHeading(t *testing.T) {
	tests := []struct {
		name    string
		east    float64
		north   float64
		heading float64
	}{
		{"north", 0, 5, 0},
		{"east", 5, 0, 90},
		{"south", 0, -5, 180},
		{"west", -5, 0, 270},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := offset(station, tt.east*1000, tt.north*1000)
			tr := newTrip([]orb.Point{station, to}, 50, wiggle{Amp: 15, Wavelength: 500}, nil)
			for _, frac := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
				_, _, got := tr.At(time.Duration(float64(tr.Duration()) * frac))
				if diff := math.Abs(math.Mod(got-tt.heading+540, 360) - 180); diff > 20 {
					t.Errorf("heading at %.0f%% = %.1f, want %.0f ± 20", frac*100, got, tt.heading)
				}
			}
		})
	}
}

func TestRouteDetours(t *testing.T) {
	u := uRegion(t)
	from, to := offset(station, 500, 4500), offset(station, 4500, 4500)
	got := route(from, to, u.Contains)
	if len(got) < 3 {
		t.Fatalf("route across the U = %d points, want a detour", len(got))
	}
	for i := 1; i < len(got); i++ {
		if !clear(got[i-1], got[i], u.Contains, 0) {
			t.Errorf("leg %d %v-%v leaves the U", i, got[i-1], got[i])
		}
	}
	if got := route(from, offset(station, 600, 3000), u.Contains); len(got) != 2 {
		t.Errorf("route within one arm = %d points, want 2", len(got))
	}
}
