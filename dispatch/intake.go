package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// newID returns a readable, unique id such as INC-20261123-080001-3f9a1c.
func newID(prefix string, now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// CreateIncident takes a call from by: it locates it in a jurisdiction and
// zone, stores it (idempotent on source and external id) and ranks the
// units. A call outside by's jurisdiction is forbidden. created is false
// when the call had been taken before.
func (s *Service) CreateIncident(ctx context.Context, by Principal, n NewIncident) (*Incident, Recommendations, bool, error) {
	if err := s.allowed(by); err != nil {
		return nil, Recommendations{}, false, err
	}
	if err := n.Validate(); err != nil {
		return nil, Recommendations{}, false, err
	}
	loc := orbPoint(n.Location)
	jur, zone, ok := s.area.Locate(loc)
	if !ok {
		return nil, Recommendations{}, false, Errorf(CodeInvalid, "location %.6f,%.6f is outside every jurisdiction of %s", n.Location.Lat, n.Location.Lon, s.area.Name)
	}
	if !by.Sees(s.area, jur.ID) {
		return nil, Recommendations{}, false, Errorf(CodeForbidden, "location %.6f,%.6f lies in jurisdiction %s, outside yours", n.Location.Lat, n.Location.Lon, jur.ID)
	}
	now := s.now().UTC()
	inc := &Incident{
		ID: newID("INC", now), ExternalID: n.ExternalID, Source: n.Source,
		Location: n.Location, Address: n.Address, Priority: n.Priority, Category: n.Category,
		Jurisdiction: jur.ID, Zone: zone, RadiusM: s.firstRadius(jur.ID, loc, zone),
		Status: IncidentOpen, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	inc.Satisfaction, inc.SatisfactionReason = s.satisfaction(inc, now)
	got, created, err := s.store.CreateIncident(ctx, inc)
	if err != nil {
		return nil, Recommendations{}, false, fmt.Errorf("create incident: %w", err)
	}
	if !created && !by.Sees(s.area, got.Jurisdiction) {
		// The same source and external id name another jurisdiction's call.
		return nil, Recommendations{}, false, Errorf(CodeForbidden, "external_id %q names a call outside your jurisdiction", n.ExternalID)
	}
	if created {
		s.board.Show(got)
		s.audit.append(ctx, by.Name, AuditIncident, got.ID, map[string]any{
			"jurisdiction": got.Jurisdiction, "priority": got.Priority, "category": got.Category, "source": got.Source, "external_id": got.ExternalID,
		})
		s.events.Publish(Event{Type: EventIncident, Incident: got, Jurisdiction: got.Jurisdiction})
	}
	return got, s.rankFor(got, by), created, nil
}

// Incident returns one incident by may see: a call in play from the
// board, any other from the record.
func (s *Service) Incident(ctx context.Context, by Principal, id string) (*Incident, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	inc, err := s.incident(ctx, id)
	if err != nil {
		return nil, err
	}
	if !by.Sees(s.area, inc.Jurisdiction) {
		return nil, Errorf(CodeForbidden, "incident %s is outside your jurisdiction", id)
	}
	return inc, nil
}

// Incidents lists the incidents by may see, narrowed to f.Scope and what
// lies beneath it ("" for all of by's jurisdiction).
func (s *Service) Incidents(ctx context.Context, by Principal, f IncidentFilter) ([]*Incident, error) {
	scope, err := s.Scope(by, f.Scope)
	if err != nil {
		return nil, err
	}
	all, err := s.store.Incidents(ctx, IncidentFilter{Status: f.Status, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	if scope == "" {
		return all, nil
	}
	return slices.DeleteFunc(all, func(i *Incident) bool { return !s.area.Within(i.Jurisdiction, scope) }), nil
}

// Assignments returns the assignments of an incident by may see.
func (s *Service) Assignments(ctx context.Context, by Principal, incident string) ([]*Assignment, error) {
	if _, err := s.Incident(ctx, by, incident); err != nil {
		return nil, err
	}
	return s.store.Assignments(ctx, incident)
}

// ActiveAssignments returns every assignment still holding its unit that
// by may see: its unit or its incident lies in by's jurisdiction.
func (s *Service) ActiveAssignments(ctx context.Context, by Principal) ([]*Assignment, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	all, err := s.store.ActiveAssignments(ctx)
	if err != nil || (by.Role == RoleAdmin && by.Jurisdiction == "") {
		return all, err
	}
	out := all[:0]
	for _, a := range all {
		if st, err := s.unit(a.Unit); err == nil && by.Sees(s.area, st.Jurisdiction) {
			out = append(out, a)
			continue
		}
		if inc, err := s.incident(ctx, a.Incident); err == nil && by.Sees(s.area, inc.Jurisdiction) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Transitions returns the unit status changes recorded for an incident by may see.
func (s *Service) Transitions(ctx context.Context, by Principal, incident string) ([]Transition, error) {
	if _, err := s.Incident(ctx, by, incident); err != nil {
		return nil, err
	}
	return s.store.Transitions(ctx, incident)
}

// Recommend ranks the units for an incident by may see, as things stand now.
func (s *Service) Recommend(ctx context.Context, by Principal, id string) (Recommendations, error) {
	inc, err := s.Incident(ctx, by, id)
	if err != nil {
		return Recommendations{}, err
	}
	return s.rankFor(inc, by), nil
}
