package dispatch

import "github.com/lifeline-ems/lifeline/geo"

// Destination advises the hospital for an incident: the nearest holding the
// centre its category needs, else the nearest hospital.
func (s *Service) Destination(inc *Incident) (Hospital, bool) {
	loc := orbPoint(inc.Location)
	centre, needs := inc.Category.Centre()
	var best Hospital
	bestD, found := 0.0, false
	for _, h := range s.area.Hospitals {
		if needs && !h.Has(centre) {
			continue
		}
		if d := geo.Distance(loc, h.Location); !found || d < bestD {
			best, bestD, found = h, d, true
		}
	}
	if !found && needs {
		return s.Destination(&Incident{Location: inc.Location, Category: CatOther})
	}
	return best, found
}
