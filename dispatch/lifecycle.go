package dispatch

import (
	"context"
	"fmt"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Status applies a crew status press from a terminal (telemetry.Sink):
// it moves the unit through its lifecycle, accepts an offered assignment
// implicitly once the crew is moving, and completes the assignment (and
// the incident, when no other unit is on it) when the unit is available
// again. A press older than the unit's last one (MQTT redelivery out of
// order) is ignored.
func (s *Service) Status(ctx context.Context, r telemetry.Status) error {
	to := UnitStatus(r.Status)
	if !to.Valid() || to == Dispatched {
		s.log.Warn("status press ignored", "unit", r.Unit, "status", r.Status)
		return nil
	}
	s.assignMu.Lock()
	defer s.assignMu.Unlock()

	s.mu.Lock()
	if r.Time.Before(s.statusAt[r.Unit]) {
		s.mu.Unlock()
		return nil
	}
	s.statusAt[r.Unit] = r.Time
	s.mu.Unlock()

	st, err := s.unit(r.Unit)
	if err != nil {
		return nil // the pipeline only passes known units; the registry may have changed
	}
	if st.Status == to {
		return nil
	}
	incident, asg := st.Incident, st.Assignment
	var a *Assignment
	var inc *Incident
	if asg != "" {
		if a, err = s.store.Assignment(ctx, asg); err != nil {
			return fmt.Errorf("status of %s: %w", r.Unit, err)
		}
		switch to {
		case Available, OutOfService:
			a.Status = AssignCompleted
			incident, asg = "", ""
		default:
			if a.Status == AssignOffered {
				a.Status = AssignAccepted
			}
		}
		a.UpdatedAt = r.Time
		if err := s.store.UpdateAssignment(ctx, a); err != nil {
			return fmt.Errorf("status of %s: %w", r.Unit, err)
		}
		if inc, err = s.settle(ctx, a.Incident); err != nil {
			return fmt.Errorf("status of %s: %w", r.Unit, err)
		}
	}
	s.setStatus(ctx, r.Unit, to, incident, asg, "terminal", r.Time)
	s.publishChange(a, inc)
	return nil
}

// Ack applies a terminal's answer to an assign command (telemetry.Sink).
// A decline frees the unit and reopens the incident when no other unit
// is on it.
func (s *Service) Ack(ctx context.Context, r telemetry.Ack) error {
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	a, err := s.store.Assignment(ctx, r.Assignment)
	if err != nil {
		s.log.Warn("ack for an unknown assignment", "unit", r.Unit, "assignment", r.Assignment)
		return nil
	}
	if a.Unit != r.Unit {
		s.log.Warn("ack refused: assignment belongs to another unit", "unit", r.Unit, "assignment", r.Assignment, "owner", a.Unit)
		return nil
	}
	if a.Status != AssignOffered {
		return nil // a duplicate, or the crew already moved on
	}
	a.UpdatedAt = r.Time
	if r.Accepted {
		a.Status = AssignAccepted
	} else {
		a.Status, a.Reason = AssignDeclined, r.Reason
	}
	if err := s.store.UpdateAssignment(ctx, a); err != nil {
		return fmt.Errorf("ack of %s: %w", r.Unit, err)
	}
	var inc *Incident
	if !r.Accepted {
		if inc, err = s.settle(ctx, a.Incident); err != nil {
			return fmt.Errorf("ack of %s: %w", r.Unit, err)
		}
		s.setStatus(ctx, r.Unit, Available, "", "", "terminal", r.Time)
	}
	s.publishChange(a, inc)
	return nil
}

// settle brings an incident's status in line with its assignments: assigned
// while any is active, closed once a unit completed it and none is active,
// open again when every unit declined.
func (s *Service) settle(ctx context.Context, id string) (*Incident, error) {
	inc, err := s.store.Incident(ctx, id)
	if err != nil {
		return nil, err
	}
	as, err := s.store.Assignments(ctx, id)
	if err != nil {
		return nil, err
	}
	want := IncidentOpen
	for _, a := range as {
		switch {
		case a.Status.Active():
			want = IncidentAssigned
		case a.Status == AssignCompleted && want == IncidentOpen:
			want = IncidentClosed
		}
	}
	if inc.Status == want || inc.Status == IncidentCancelled {
		return inc, nil
	}
	now := s.now().UTC()
	inc.Status, inc.UpdatedAt = want, now
	if want == IncidentClosed {
		inc.ClosedAt = now
	}
	if err := s.store.UpdateIncident(ctx, inc); err != nil {
		return nil, err
	}
	return inc, nil
}

func (s *Service) publishChange(a *Assignment, inc *Incident) {
	if a != nil {
		jur := ""
		if inc != nil {
			jur = inc.Jurisdiction
		} else if st, err := s.unit(a.Unit); err == nil {
			jur = st.Jurisdiction
		}
		s.events.Publish(Event{Type: EventAssignment, Assignment: a, Jurisdiction: jur})
	}
	if inc != nil {
		s.events.Publish(Event{Type: EventIncident, Incident: inc, Jurisdiction: inc.Jurisdiction})
	}
}
