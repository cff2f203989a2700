package dispatch

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

func orbPoint(l LatLon) orb.Point { return orb.Point{l.Lon, l.Lat} }

// farthest bounds the search when no unit is inside the service radius:
// the dispatcher still sees the nearest units, marked outside the radius.
const farthest = 1_000_000

// ineligible says why a unit cannot be recommended for an incident in
// jurisdiction jur, or "" when it can. The caller holds s.mu.
func (s *Service) ineligible(st *UnitState, jur string, now time.Time) string {
	switch {
	case st.Status != Available:
		if st.Incident != "" {
			return fmt.Sprintf("%s on %s", st.Status, st.Incident)
		}
		return string(st.Status)
	case !s.area.Within(st.Jurisdiction, jur):
		return fmt.Sprintf("belongs to jurisdiction %s (city-county linkage needs its consent)", st.Jurisdiction)
	case !st.Online:
		return "terminal offline"
	case st.Position == nil:
		return "no GPS fix yet"
	case now.Sub(st.Position.Time) > s.stale:
		return fmt.Sprintf("position stale: last fix %s ago", now.Sub(st.Position.Time).Round(time.Second))
	}
	return ""
}

// rank lists the units to send to inc, best first, and why the others
// are not listed. Candidates come from the spatial index, radius step by
// radius step (urban 5 km; rural 10 km, then 20 km); when none is inside
// the last step the nearest available units are still listed, marked
// outside the radius, so that a dispatcher is never left with nothing.
func (s *Service) rank(inc *Incident) Recommendations {
	now := s.now()
	loc := orbPoint(inc.Location)
	eligible := map[string]*UnitState{}
	var excluded []Exclusion
	s.mu.RLock()
	for id, st := range s.units {
		if why := s.ineligible(st, inc.Jurisdiction, now); why != "" {
			if s.area.Within(st.Jurisdiction, inc.Jurisdiction) {
				excluded = append(excluded, Exclusion{Unit: id, Reason: why})
			}
			continue
		}
		v := *st
		eligible[id] = &v
	}
	s.mu.RUnlock()
	slices.SortFunc(excluded, func(a, b Exclusion) int { return cmp.Compare(a.Unit, b.Unit) })

	keep := func(id string) bool { return eligible[id] != nil }
	steps := s.radii.Steps(inc.Zone)
	var hits []geo.Hit
	used, widened := steps[len(steps)-1], false
	for i, r := range steps {
		if hits = geo.Nearest(s.index, loc, r, s.top, keep); len(hits) > 0 {
			used, widened = r, i > 0
			break
		}
	}
	within := len(hits) > 0
	if !within {
		hits = geo.Nearest(s.index, loc, farthest, s.top, keep)
	}

	recs := make([]Recommendation, 0, len(hits))
	for _, h := range hits {
		u := eligible[h.ID]
		route := s.eta.Estimate(h.Point, loc, inc.Zone)
		r := Recommendation{
			Unit: u.ID, Callsign: u.Callsign, Station: u.Station,
			DistanceM: h.Distance, RoadM: route.Metres, ETAS: route.Duration.Seconds(),
			WithinRadius: within,
		}
		recs = append(recs, r)
	}
	slices.SortStableFunc(recs, func(a, b Recommendation) int {
		return cmp.Or(cmp.Compare(a.ETAS, b.ETAS), cmp.Compare(a.DistanceM, b.DistanceM), cmp.Compare(a.Unit, b.Unit))
	})
	for i := range recs {
		recs[i].Rank = i + 1
		recs[i].Reasons = s.reasons(inc, eligible[recs[i].Unit], recs[i], used, widened)
	}
	return Recommendations{Incident: inc.ID, RadiusM: used, Candidates: recs, Excluded: excluded, GeneratedAt: now.UTC()}
}

// reasons explains a candidate's place in the ranking.
func (s *Service) reasons(inc *Incident, u *UnitState, r Recommendation, radius float64, widened bool) []string {
	var out []string
	km := r.DistanceM / 1000
	switch {
	case !r.WithinRadius:
		out = append(out, fmt.Sprintf("no available unit within the %s %.0f km radius: nearest outside it (%.1f km) — consider linkage", inc.Zone, radius/1000, km))
	case r.Rank == 1:
		out = append(out, fmt.Sprintf("nearest available unit: %.1f km, about %.0f min", km, r.ETAS/60))
	default:
		out = append(out, fmt.Sprintf("%.1f km, about %.0f min", km, r.ETAS/60))
	}
	if widened && r.WithinRadius {
		out = append(out, fmt.Sprintf("none within %.0f km: rural radius widened to %.0f km", s.radii.Steps(inc.Zone)[0]/1000, radius/1000))
	}
	switch {
	case u.Has(ALS):
		out = append(out, "ALS crew")
	case inc.Priority == 1:
		out = append(out, "BLS only: consider an ALS unit as well for a priority-1 call")
	}
	if u.Has(NeoCare) && inc.Category == CatNeonatal {
		out = append(out, "carries a transport incubator")
	}
	return out
}
