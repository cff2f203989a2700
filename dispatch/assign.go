package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Assign commits a unit to an incident on behalf of by. It is a
// compare-and-set: only an available unit can be assigned, so two
// dispatchers can never send one unit twice; the loser gets a conflict.
// The terminal gets the assign command on its cmd topic.
//
// A person decides who goes: an integrator may not assign. Both the
// incident and the unit must lie in by's jurisdiction; a county dispatcher
// cannot send another county's unit (that needs the owning county's
// consent). Every assignment is audited under by's name.
func (s *Service) Assign(ctx context.Context, by Principal, incidentID, unitID string) (*Assignment, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	if by.Role == RoleIntegrator {
		s.denied(ctx, by, incidentID, unitID, "integrator")
		return nil, Errorf(CodeForbidden, "an integrator may not assign units: a dispatcher decides who goes")
	}
	s.assignMu.Lock()
	a, inc, again, err := s.assign(ctx, by, incidentID, unitID)
	s.assignMu.Unlock()
	if err != nil {
		if errors.Is(err, errForbidden) {
			s.denied(ctx, by, incidentID, unitID, ErrorMessage(err))
		}
		return nil, err
	}
	s.audit.append(ctx, by.Name, AuditAssign, inc.ID, map[string]any{"assignment": a.ID, "unit": unitID, "role": by.Role, "reassign": again})
	s.events.Publish(Event{Type: EventAssignment, Assignment: a, Jurisdiction: inc.Jurisdiction})
	s.events.Publish(Event{Type: EventIncident, Incident: inc, Jurisdiction: inc.Jurisdiction})
	s.sendAssign(ctx, a, inc)
	return a, nil
}

var errForbidden = &Error{Code: CodeForbidden}

func (s *Service) denied(ctx context.Context, by Principal, incident, unit, why string) {
	s.audit.append(ctx, by.Name, AuditACLDenied, incident, map[string]string{"action": "assign", "unit": unit, "why": why})
}

// assign does the checks and the compare-and-set; again reports whether
// the incident had an assignment before (a reassignment).
func (s *Service) assign(ctx context.Context, by Principal, incidentID, unitID string) (a *Assignment, inc *Incident, again bool, err error) {
	if inc, err = s.Incident(ctx, by, incidentID); err != nil {
		return nil, nil, false, err
	}
	st, err := s.unit(unitID)
	if err != nil {
		return nil, nil, false, err
	}
	if !by.Sees(s.area, st.Jurisdiction) {
		return nil, nil, false, Errorf(CodeForbidden, "unit %s belongs to jurisdiction %s: sending another county's unit needs the owning county's consent", unitID, st.Jurisdiction)
	}
	if inc.Status == IncidentClosed || inc.Status == IncidentCancelled {
		return nil, nil, false, Errorf(CodeConflict, "incident %s is %s", inc.ID, inc.Status)
	}
	if st.Status != Available {
		why := string(st.Status)
		if st.Incident != "" {
			why += " on " + st.Incident
		}
		return nil, nil, false, Errorf(CodeConflict, "unit %s is no longer available (%s)", unitID, why)
	}
	before, err := s.store.Assignments(ctx, inc.ID)
	if err != nil {
		return nil, nil, false, fmt.Errorf("assign unit %s: %w", unitID, err)
	}
	now := s.now().UTC()
	a = &Assignment{ID: newID("ASG", now), Incident: inc.ID, Unit: unitID, Status: AssignOffered, By: by.Name, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateAssignment(ctx, a); err != nil {
		return nil, nil, false, fmt.Errorf("assign unit %s: %w", unitID, err)
	}
	inc.Status, inc.UpdatedAt = IncidentAssigned, now
	if err := s.store.UpdateIncident(ctx, inc); err != nil {
		return nil, nil, false, fmt.Errorf("assign unit %s: %w", unitID, err)
	}
	s.setStatus(ctx, unitID, Dispatched, inc.ID, a.ID, "dispatcher:"+by.Name, now)
	return a, inc, len(before) > 0, nil
}

// setStatus moves a unit to status to and records the transition.
func (s *Service) setStatus(ctx context.Context, unitID string, to UnitStatus, incident, assignment, source string, at time.Time) {
	var from UnitStatus
	logged := incident // a unit clearing an incident records the change against it
	s.update(unitID, func(st *UnitState) bool {
		from = st.Status
		if logged == "" {
			logged = st.Incident
		}
		st.Status, st.Incident, st.Assignment = to, incident, assignment
		return true
	})
	t := Transition{Unit: unitID, Incident: logged, From: from, To: to, At: at, Source: source}
	if err := s.store.AppendTransition(ctx, t); err != nil {
		s.log.Error("record transition", "unit", unitID, "to", to, "err", err)
	}
}
