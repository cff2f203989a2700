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

// Estimator estimates the drive from a unit at from to an incident at to in
// zone z. It is an interface so that a road-network router can replace the
// straight-line model later. Implementations must be monotonic in the
// straight-line distance for a fixed zone: a unit farther away as the crow
// flies never gets a shorter estimate. The recommender ranks units by index
// distance and relies on this.
type Estimator interface {
	Estimate(from, to orb.Point, z Zone) Route
}

// Profile turns a crow-flies distance into a drive: the road distance is the
// crow-flies distance times RoadFactor (1 or more) and the drive time is the
// road distance at an average SpeedKmh (positive).
type Profile struct {
	RoadFactor, SpeedKmh float64
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
// a detour factor and driven at an average speed, per zone. A zone that is
// not Valid is treated as Rural.
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
// Within a zone both the road distance and the time are proportional to the
// crow-flies distance, so the estimate is monotonic in it, as Estimator
// requires.
var DefaultETA = Detour{
	Urban: Profile{RoadFactor: 1.35, SpeedKmh: 30},
	Rural: Profile{RoadFactor: 1.5, SpeedKmh: 50},
}

// Estimate returns the drive from from to to using the profile of zone z.
func (d Detour) Estimate(from, to orb.Point, z Zone) Route {
	p := d.Rural
	if z == Urban {
		p = d.Urban
	}
	return p.route(Distance(from, to))
}
