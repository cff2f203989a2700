package memory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// CallRecords implements dispatch.Store: the first time of each stage is
// the earliest one recorded.
func (s *Store) CallRecords(ctx context.Context, f dispatch.KPIFilter) ([]dispatch.CallRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jurs map[string]bool
	if len(f.Jurisdictions) > 0 {
		jurs = map[string]bool{}
		for _, j := range f.Jurisdictions {
			jurs[j] = true
		}
	}
	var out []dispatch.CallRecord
	for _, inc := range s.incidents {
		if inc.CreatedAt.Before(f.From) || !inc.CreatedAt.Before(f.To) || (jurs != nil && !jurs[inc.Jurisdiction]) {
			continue
		}
		r := dispatch.CallRecord{
			Incident: inc.ID, Jurisdiction: inc.Jurisdiction, Priority: inc.Priority, Status: inc.Status,
			Satisfaction: inc.Satisfaction, SatisfactionReason: inc.SatisfactionReason,
			CreatedAt: inc.CreatedAt.UTC(), ClosedAt: inc.ClosedAt.UTC(),
		}
		for _, id := range s.byIncident[inc.ID] {
			a := s.assignments[id]
			r.Dispatched = earliest(r.Dispatched, a.CreatedAt)
			r.Accepted = earliest(r.Accepted, a.AcceptedAt)
		}
		out = append(out, r)
	}
	at := make(map[string]int, len(out))
	for i, r := range out {
		at[r.Incident] = i
	}
	for _, t := range s.transitions {
		i, ok := at[t.Incident]
		if !ok {
			continue
		}
		r := &out[i]
		switch t.To {
		case dispatch.EnRoute:
			r.EnRoute = earliest(r.EnRoute, t.At)
		case dispatch.OnScene:
			r.OnScene = earliest(r.OnScene, t.At)
		case dispatch.AtHospital:
			r.AtHospital = earliest(r.AtHospital, t.At)
		}
	}
	slices.SortFunc(out, func(a, b dispatch.CallRecord) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Incident, b.Incident))
	})
	return out, nil
}

// earliest returns the earlier of a and t in UTC, ignoring zero times.
func earliest(a, t time.Time) time.Time {
	if t.IsZero() || (!a.IsZero() && !t.Before(a)) {
		return a
	}
	return t.UTC()
}
