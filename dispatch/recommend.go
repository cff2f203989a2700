package dispatch

import (
	"cmp"
	"context"
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

// maxExcluded bounds the units a recommendation lists as excluded: the
// ones met within the search radius, nearest first. A fleet with many
// busy or offline units must not grow every answer with them.
const maxExcluded = 20

// ineligible says why a unit cannot be recommended now, or "" when it can.
func (s *Service) ineligible(st *UnitState, now time.Time) string {
	switch {
	case st.Status != Available:
		if st.Incident != "" {
			return fmt.Sprintf("%s on %s", st.Status, st.Incident)
		}
		return string(st.Status)
	case !st.Online:
		return "terminal offline"
	case st.Position == nil:
		return "no GPS fix yet"
	case now.Sub(st.Position.seen()) > s.stale:
		return fmt.Sprintf("position stale: last fix received %s ago", now.Sub(st.Position.seen()).Round(time.Second))
	}
	return ""
}

// rank lists the units to send to inc, best first, and why others near it
// are not listed. It walks the picture outward from the call, nearest
// first, and stops once it has the candidates it lists, so its cost grows
// with how far it must look, not with the fleet. The radius is the first
// step of the zone's ladder (urban 5 km; rural 10 km, then 20 km) that
// holds the best candidate; candidates beyond it are still listed, marked
// outside the radius, so that a dispatcher always has a backup and is
// never left with nothing. Units that declined or abandoned this call are
// not offered it again.
func (s *Service) rank(ctx context.Context, inc *Incident) Recommendations {
	now := s.now()
	loc := orbPoint(inc.Location)
	steps := s.radii.Steps(inc.Zone)
	last := steps[len(steps)-1]
	refused := s.refusedBy(ctx, inc.ID)
	var (
		recs     []Recommendation
		cands    []UnitState
		excluded []Exclusion
	)
	s.pic.Nearby(loc, farthest, func(h geo.Hit, st UnitState) bool {
		if !s.area.Within(st.Jurisdiction, inc.Jurisdiction) {
			return true
		}
		why := s.ineligible(&st, now)
		if why == "" && refused[st.ID] != "" {
			why = refused[st.ID]
		}
		if why != "" {
			if h.Distance <= last && len(excluded) < maxExcluded {
				excluded = append(excluded, Exclusion{Unit: st.ID, Reason: why})
			}
			return true
		}
		route := s.eta.Estimate(h.Point, loc, inc.Zone)
		recs = append(recs, Recommendation{
			Unit: st.ID, Callsign: st.Callsign, Station: st.Station,
			DistanceM: h.Distance, RoadM: route.Metres, ETAS: route.Duration.Seconds(),
		})
		cands = append(cands, st)
		return len(recs) < s.top
	})
	used, widened := last, false
	if len(recs) > 0 {
		for i, r := range steps {
			if recs[0].DistanceM <= r {
				used, widened = r, i > 0
				break
			}
		}
	}
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := recs[a], recs[b]
		return cmp.Or(cmp.Compare(ra.ETAS, rb.ETAS), cmp.Compare(ra.DistanceM, rb.DistanceM), cmp.Compare(ra.Unit, rb.Unit))
	})
	out := make([]Recommendation, len(recs))
	for rank, i := range order {
		r := recs[i]
		r.Rank = rank + 1
		r.WithinRadius = r.DistanceM <= used
		r.Reasons = s.reasons(inc, &cands[i], r, used, widened)
		out[rank] = r
	}
	slices.SortFunc(excluded, func(a, b Exclusion) int { return cmp.Compare(a.Unit, b.Unit) })
	return Recommendations{Incident: inc.ID, RadiusM: used, Candidates: out, Excluded: excluded, GeneratedAt: now.UTC()}
}

// refusedBy returns the units that declined or abandoned incident, with
// the reason to show: they are not offered the same call again.
func (s *Service) refusedBy(ctx context.Context, incident string) map[string]string {
	as, err := s.store.Assignments(ctx, incident)
	if err != nil {
		s.log.Warn("recommend: assignments of the call", "incident", incident, "err", err)
		return nil
	}
	var out map[string]string
	for _, a := range as {
		switch a.Status {
		case AssignDeclined, AssignAborted:
			if out == nil {
				out = map[string]string{}
			}
			out[a.Unit] = fmt.Sprintf("%s this call at %s", a.Status, a.UpdatedAt.UTC().Format("15:04:05"))
		}
	}
	return out
}

// reasons explains a candidate's place in the ranking.
func (s *Service) reasons(inc *Incident, u *UnitState, r Recommendation, radius float64, widened bool) []string {
	var out []string
	km := r.DistanceM / 1000
	switch {
	case !r.WithinRadius && r.Rank == 1:
		out = append(out, fmt.Sprintf("no available unit within the %s %.0f km radius: nearest outside it (%.1f km) — consider linkage", inc.Zone, radius/1000, km))
	case !r.WithinRadius:
		out = append(out, fmt.Sprintf("%.1f km, about %.0f min: outside the %.0f km radius (backup)", km, r.ETAS/60, radius/1000))
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
