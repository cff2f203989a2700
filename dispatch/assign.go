package dispatch

import (
	"context"
	"errors"
	"fmt"
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
	s.decide.Lock()
	a, inc, again, cmds, err := s.assign(ctx, by, incidentID, unitID)
	s.decide.Unlock()
	if err != nil {
		if errors.Is(err, errForbidden) {
			s.denied(ctx, by, incidentID, unitID, ErrorMessage(err))
		}
		return nil, err
	}
	s.audit.append(ctx, by.Name, AuditAssign, inc.ID, map[string]any{"assignment": a.ID, "unit": unitID, "role": by.Role, "reassign": again})
	s.deliver(ctx, cmds)
	return a, nil
}

var errForbidden = &Error{Code: CodeForbidden}

func (s *Service) denied(ctx context.Context, by Principal, incident, unit, why string) {
	s.audit.append(ctx, by.Name, AuditACLDenied, incident, map[string]string{"action": "assign", "unit": unit, "why": why})
}

// assign does the checks and stores the assignment, the unit's move to
// dispatched and the incident's move to assigned in one compare-and-set;
// again reports whether the incident had an assignment before (a
// reassignment), and cmds the assign command stored with it, to be
// delivered. The caller holds s.decide.
func (s *Service) assign(ctx context.Context, by Principal, incidentID, unitID string) (a *Assignment, inc *Incident, again bool, cmds []OutboxCommand, err error) {
	d, err := s.decideAndCommit(ctx, func() (decision, error) {
		cur, err := s.Incident(ctx, by, incidentID)
		if err != nil {
			return decision{}, err
		}
		st, err := s.unit(unitID)
		if err != nil {
			return decision{}, err
		}
		if !by.Sees(s.area, st.Jurisdiction) {
			return decision{}, Errorf(CodeForbidden, "unit %s belongs to jurisdiction %s: sending another county's unit needs the owning county's consent", unitID, st.Jurisdiction)
		}
		if cur.Status == IncidentClosed || cur.Status == IncidentCancelled {
			return decision{}, Errorf(CodeConflict, "incident %s is %s", cur.ID, cur.Status)
		}
		if st.Status != Available {
			why := string(st.Status)
			if st.Incident != "" {
				why += " on " + st.Incident
			}
			return decision{}, Errorf(CodeConflict, "unit %s is no longer available (%s)", unitID, why)
		}
		before, err := s.store.Assignments(ctx, cur.ID)
		if err != nil {
			return decision{}, fmt.Errorf("assign unit %s: %w", unitID, err)
		}
		again = len(before) > 0
		now := s.now().UTC()
		a = &Assignment{ID: newID("ASG", now), Incident: cur.ID, Unit: unitID, Status: AssignOffered, By: by.Name, Version: 1, CreatedAt: now, UpdatedAt: now}
		inc = next(cur, now)
		inc.Status = IncidentAssigned
		r, t := move(st, Dispatched, cur.ID, a.ID, sourceDispatcher+by.Name, now)
		cmd := s.assignCommand(ctx, a, inc, now)
		return decision{change: Change{Incident: inc, Assignments: []*Assignment{a}, Units: []UnitRecord{r}, Transitions: []Transition{t}, Commands: []OutboxCommand{cmd}}, incident: inc}, nil
	})
	if err != nil {
		return nil, nil, false, nil, err
	}
	return a, d.incident, again, d.change.Commands, nil
}
