package geo

import "fmt"

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

// MaxRadius bounds every search radius of a policy: 100 km, more than an
// ambulance can usefully cover and enough for any county.
const MaxRadius = 100_000

// Ladder returns the first and the widest search radius for zone z: the
// urban radius twice for Urban; Rural and then RuralMax otherwise, or
// Rural twice when RuralMax is not larger. A zone that is not Valid gets
// the rural ladder, the wider one, so that an unclassified incident is
// never searched too narrowly.
func (p RadiusPolicy) Ladder(z Zone) (first, widest float64) {
	if z == Urban {
		return p.Urban, p.Urban
	}
	return p.Rural, max(p.Rural, p.RuralMax)
}

// Steps returns the escalation ladder of search radii for zone z, smallest
// first: [Urban] for Urban, [Rural, RuralMax] otherwise, leaving out RuralMax
// when it is not larger than Rural (see Ladder). The slice is new on every
// call.
func (p RadiusPolicy) Steps(z Zone) []float64 {
	first, widest := p.Ladder(z)
	if widest > first {
		return []float64{first, widest}
	}
	return []float64{first}
}

// Max returns the last, largest step of the ladder for zone z.
func (p RadiusPolicy) Max(z Zone) float64 {
	_, widest := p.Ladder(z)
	return widest
}

// Or returns p with every zero radius taken from def: a partial policy,
// such as an area file's radii for one jurisdiction, over the defaults.
func (p RadiusPolicy) Or(def RadiusPolicy) RadiusPolicy {
	if p.Urban == 0 {
		p.Urban = def.Urban
	}
	if p.Rural == 0 {
		p.Rural = def.Rural
	}
	if p.RuralMax == 0 {
		p.RuralMax = def.RuralMax
	}
	return p
}

// Check reports what is wrong with the radii p sets (zero means unset): a
// radius must be positive and at most MaxRadius, and when both Rural and
// RuralMax are set Rural must not exceed RuralMax.
func (p RadiusPolicy) Check() error {
	for _, r := range []struct {
		name string
		m    float64
	}{{"urban", p.Urban}, {"rural", p.Rural}, {"rural_max", p.RuralMax}} {
		if err := CheckRadius(r.m); err != nil {
			return fmt.Errorf("%s radius: %w", r.name, err)
		}
	}
	if p.Rural > 0 && p.RuralMax > 0 && p.Rural > p.RuralMax {
		return fmt.Errorf("rural radius %g m is larger than rural_max %g m", p.Rural, p.RuralMax)
	}
	return nil
}

// CheckRadius reports what is wrong with a radius in metres, 0 meaning
// unset: a set radius is positive and at most MaxRadius.
func CheckRadius(m float64) error {
	if m == 0 {
		return nil
	}
	if !(m > 0 && m <= MaxRadius) {
		return fmt.Errorf("%g m is not a radius: want more than 0 and at most %d m", m, MaxRadius)
	}
	return nil
}
