package geo

import (
	"math"
	"time"

	"github.com/paulmach/orb"
)

// Route is an estimated drive: road distance in metres and drive time.
type Route struct {
	Metres   float64
	Duration time.Duration
}

// Estimator estimates the drive of a unit to an incident. It is an
// interface so that a road-network router can replace the straight-line
// model later. Nothing requires an estimate to grow with the straight-line
// distance: a unit in a zone with faster roads, or on a good road, may be
// sooner at the scene than a nearer one. What the recommender relies on is
// a lower bound: it searches outward from the incident and stops once no
// unit farther out can beat the drives it already has.
type Estimator interface {
	// Estimate returns the drive from a unit at from, in zone fromZone,
	// to an incident at to, in zone toZone.
	Estimate(from, to orb.Point, fromZone, toZone Zone) Route
	// MinDuration returns a lower bound on the drive time between two
	// points crow metres apart as the crow flies, whatever their zones:
	// Estimate(from, to, fz, tz).Duration >= MinDuration(Distance(from, to))
	// for every from, to, fz and tz. It never decreases as crow grows.
	MinDuration(crow float64) time.Duration
}

// Profile turns a crow-flies distance into a drive: the road distance is the
// crow-flies distance times RoadFactor (1 or more) and the drive time is the
// road distance at an average SpeedKmh (positive).
type Profile struct {
	RoadFactor, SpeedKmh float64
}

// pace returns the profile's drive time per crow-flies metre, in seconds,
// or +Inf for a profile without a positive speed.
func (p Profile) pace() float64 {
	if !(p.SpeedKmh > 0) {
		return math.Inf(1)
	}
	return p.RoadFactor / (p.SpeedKmh / 3.6)
}

// route returns the drive for a crow-flies distance in metres. A profile
// without a positive speed yields the longest representable duration.
func (p Profile) route(crow float64) Route {
	m := crow * p.RoadFactor
	secs := m / (p.SpeedKmh / 3.6)
	if !(p.SpeedKmh > 0) || !(secs < float64(math.MaxInt64)/float64(time.Second)) {
		return Route{Metres: m, Duration: math.MaxInt64}
	}
	return Route{Metres: m, Duration: time.Duration(secs * float64(time.Second))}
}

// Detour is the straight-line Estimator: the haversine distance stretched by
// a detour factor and driven at an average speed, per zone. A drive between
// two zones goes half of the way in each. A zone that is not Valid is
// treated as Rural.
type Detour struct {
	Urban, Rural Profile
}

var _ Estimator = Detour{}

// DefaultETA is the Detour model Lifeline ships with. The numbers are
// illustrative defaults to be tuned against real trip logs, not measurements
// of Fushun County:
//
//   - RoadFactor: the circuity (detour index) of road networks, road
//     distance over straight-line distance, is typically 1.2-1.4 in towns
//     with a street grid; 1.35 sits at the cautious end for a county town.
//     Roads in hilly country wind along valleys and ridges, and Fushun
//     County in Sichuan is hilly, so rural trips get 1.5.
//   - SpeedKmh: an ambulance averages roughly 30 km/h through a county
//     town (junctions, market streets, pedestrians) and roughly 50 km/h on
//     rural roads, well under posted limits because of curves and grades.
//
// So a unit waiting just outside town may reach a call in town sooner than
// one a little nearer inside it: the estimate is not monotonic in the
// straight-line distance, and the recommender does not assume it is.
var DefaultETA = Detour{
	Urban: Profile{RoadFactor: 1.35, SpeedKmh: 30},
	Rural: Profile{RoadFactor: 1.5, SpeedKmh: 50},
}

// profile returns the profile of zone z.
func (d Detour) profile(z Zone) Profile {
	if z == Urban {
		return d.Urban
	}
	return d.Rural
}

// Estimate returns the drive from from, in zone fz, to to, in zone tz: the
// profile of the zone both lie in, or half of the way at each.
func (d Detour) Estimate(from, to orb.Point, fz, tz Zone) Route {
	crow := Distance(from, to)
	a, b := d.profile(fz), d.profile(tz)
	if a == b {
		return a.route(crow)
	}
	ra, rb := a.route(crow/2), b.route(crow/2)
	r := Route{Metres: ra.Metres + rb.Metres, Duration: ra.Duration + rb.Duration}
	if ra.Duration > math.MaxInt64-rb.Duration {
		r.Duration = math.MaxInt64
	}
	return r
}

// MinDuration returns the drive time of crow metres at the faster of the
// two profiles, less a microsecond for rounding, never negative.
func (d Detour) MinDuration(crow float64) time.Duration {
	pace := min(d.Urban.pace(), d.Rural.pace())
	secs := crow * pace
	if !(secs < float64(math.MaxInt64)/float64(time.Second)) {
		if math.IsNaN(secs) {
			return 0
		}
		return math.MaxInt64 - time.Microsecond
	}
	return max(0, time.Duration(secs*float64(time.Second))-time.Microsecond)
}
