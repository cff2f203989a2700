package geo

// Zone classifies where an incident happened, which sets how far to look for
// units and how fast they can drive there.
type Zone string

// The zones Lifeline knows.
const (
	// Urban is a county town or other built-up area: dense roads, slow traffic.
	Urban Zone = "urban"
	// Rural is everything else: sparse, winding roads, fewer units, longer reach.
	Rural Zone = "rural"
)

// Valid reports whether z is one of the defined zones.
func (z Zone) Valid() bool {
	return z == Urban || z == Rural
}

// RadiusPolicy holds the search radii, in metres, used to look for units
// around an incident. Urban incidents are searched once within Urban; rural
// ones first within Rural and then, if that finds nothing suitable, within
// RuralMax.
type RadiusPolicy struct {
	Urban, Rural, RuralMax float64
}

// DefaultRadii is the policy Lifeline ships with: 5 km in town, 10 km and
// then 20 km in the countryside.
var DefaultRadii = RadiusPolicy{Urban: 5000, Rural: 10000, RuralMax: 20000}

// Steps returns the escalation ladder of search radii for zone z, smallest
// first: [Urban] for Urban, [Rural, RuralMax] otherwise, leaving out RuralMax
// when it is not larger than Rural. A zone that is not Valid gets the rural
// ladder, the wider one, so that an unclassified incident is never searched
// too narrowly. The slice is new on every call.
func (p RadiusPolicy) Steps(z Zone) []float64 {
	if z == Urban {
		return []float64{p.Urban}
	}
	if p.RuralMax > p.Rural {
		return []float64{p.Rural, p.RuralMax}
	}
	return []float64{p.Rural}
}

// Max returns the last, largest step of the ladder for zone z.
func (p RadiusPolicy) Max(z Zone) float64 {
	s := p.Steps(z)
	return s[len(s)-1]
}
