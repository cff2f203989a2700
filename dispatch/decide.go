package dispatch

import (
	"context"
	"errors"
	"time"
)

// maxDecideAttempts bounds how often a decision is made again after the
// record refused it because another server changed what it read.
const maxDecideAttempts = 3

// decision is one dispatch decision ready to be stored: the change, and
// the incident it concerns (for the events' scope), nil for a unit's own
// status change.
type decision struct {
	change   Change
	incident *Incident
}

// decideAndCommit makes a decision with build from the state as it is,
// stores it (all or nothing) and only then shows it in the picture and
// publishes it. When the record refuses it for a version conflict (another
// server decided from the same state), the units it touched are reloaded
// from the record and build runs again, up to maxDecideAttempts times;
// build sees the new state and may refuse. The caller holds s.decide.
func (s *Service) decideAndCommit(ctx context.Context, build func() (decision, error)) (decision, error) {
	for attempt := 1; ; attempt++ {
		d, err := build()
		if err != nil {
			return decision{}, err
		}
		err = s.store.Apply(ctx, d.change)
		if err == nil {
			s.show(d)
			return d, nil
		}
		if d.change.Incident != nil {
			// The call may have changed elsewhere: read it from the record.
			s.board.Forget(d.change.Incident.ID)
		}
		if !errors.Is(err, ErrConflict) || attempt == maxDecideAttempts {
			return decision{}, err
		}
		for _, r := range d.change.Units {
			if err := s.reload(ctx, r.Unit); err != nil {
				return decision{}, err
			}
		}
	}
}

// reload makes the picture's dispatch state of unit the record's.
func (s *Service) reload(ctx context.Context, unit string) error {
	r, err := s.store.UnitRecord(ctx, unit)
	if errors.Is(err, ErrNotFound) {
		r = UnitRecord{Unit: unit, Status: Available}
	} else if err != nil {
		return err
	}
	s.update(unit, func(st *UnitState) bool { st.setRecord(r); return true })
	return nil
}

// show applies a stored decision to the picture and publishes it:
// the units first, then the assignments, then the incident.
func (s *Service) show(d decision) {
	s.refused.note(d.change)
	for _, r := range d.change.Units {
		s.update(r.Unit, func(st *UnitState) bool { st.setRecord(r); return true })
	}
	jur := ""
	if d.incident != nil {
		jur = d.incident.Jurisdiction
	}
	for _, a := range d.change.Assignments {
		j := jur
		if j == "" {
			if st, ok := s.pic.Unit(a.Unit); ok {
				j = st.Jurisdiction
			}
		}
		s.events.Publish(Event{Type: EventAssignment, Assignment: a, Jurisdiction: j})
	}
	if d.change.Incident != nil {
		s.board.Show(d.change.Incident)
		s.events.Publish(Event{Type: EventIncident, Incident: d.change.Incident, Jurisdiction: d.change.Incident.Jurisdiction})
	}
}

// move is the change of a unit from its state st to status to, working
// incident and assignment ("" for none), with its transition. source is
// who moved it: terminal, dispatcher:<name> or system. A press (source
// terminal) also records its time, so that an older press is known as
// one.
func move(st UnitState, to UnitStatus, incident, assignment, source string, at time.Time) (UnitRecord, Transition) {
	r := st.record()
	logged := incident // a unit clearing an incident records the change against it
	if logged == "" {
		logged = st.Incident
	}
	r.Status, r.Incident, r.Assignment, r.At = to, incident, assignment, at
	if source == SourceTerminal {
		r.PressAt = at
	}
	r.Version++
	return r, Transition{Unit: st.ID, Incident: logged, From: st.Status, To: to, At: at, Source: source}
}

// Sources of a transition.
const (
	SourceTerminal   = "terminal"
	SourceSystem     = "system"
	sourceDispatcher = "dispatcher:"
)

// next returns a copy of inc, one version on, changed at now.
func next(inc *Incident, now time.Time) *Incident {
	c := *inc
	c.Version++
	c.UpdatedAt = now
	return &c
}

// nextAssignment returns a copy of a, one version on, changed at at. The
// first acceptance keeps its time (the KPI ledger's ack stage).
func nextAssignment(a *Assignment, status AssignmentStatus, at time.Time) *Assignment {
	c := *a
	c.Version++
	c.Status, c.UpdatedAt = status, at
	if status == AssignAccepted && c.AcceptedAt.IsZero() {
		c.AcceptedAt = at
	}
	return &c
}

// settled is the status an incident takes from its assignments (as they
// will be once the decision is stored): assigned while any is active;
// closed once a unit completed its part and no unit aborted; otherwise
// open again, back in the queue (every offer declined, a unit that could
// not go on). A cancelled or closed incident stays as it is.
func settled(inc *Incident, as []*Assignment) IncidentStatus {
	if inc.Status == IncidentCancelled || inc.Status == IncidentClosed {
		return inc.Status
	}
	completed, aborted := false, false
	for _, a := range as {
		switch a.Status {
		case AssignOffered, AssignAccepted:
			return IncidentAssigned
		case AssignCompleted:
			completed = true
		case AssignAborted:
			aborted = true
		}
	}
	if completed && !aborted {
		return IncidentClosed
	}
	return IncidentOpen
}

// withStatus returns the incident after a change to its assignments, or
// nil when its status stays as it is.
func withStatus(inc *Incident, as []*Assignment, now time.Time) *Incident {
	want := settled(inc, as)
	if want == inc.Status {
		return nil
	}
	c := next(inc, now)
	c.Status = want
	if want == IncidentClosed {
		c.ClosedAt = now
	}
	return c
}

// replace returns as with a in place of the assignment of the same id.
func replace(as []*Assignment, a *Assignment) []*Assignment {
	out := make([]*Assignment, 0, len(as)+1)
	found := false
	for _, b := range as {
		if b.ID == a.ID {
			b, found = a, true
		}
		out = append(out, b)
	}
	if !found {
		out = append(out, a)
	}
	return out
}
