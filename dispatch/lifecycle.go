package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// pressable says, for each status, which statuses a crew may press next.
// A unit works a call in order: dispatched -> en_route -> on_scene ->
// transporting -> at_hospital, then available. A crew that forgets to
// press en_route may press on_scene from dispatched; nothing else skips.
// A crew may stop at any point (out_of_service), and may clear
// (available) before transporting; a unit that clears or stops before it
// has done its part puts the call back in the queue (see Status).
var pressable = map[UnitStatus][]UnitStatus{
	Available:    {OutOfService},
	OutOfService: {Available},
	Dispatched:   {EnRoute, OnScene, Available, OutOfService},
	EnRoute:      {OnScene, Available, OutOfService},
	OnScene:      {Transporting, Available, OutOfService},
	Transporting: {AtHospital, OutOfService},
	AtHospital:   {Available, OutOfService},
}

// canPress reports whether a crew in status from may press to.
func canPress(from, to UnitStatus) bool {
	for _, s := range pressable[from] {
		if s == to {
			return true
		}
	}
	return false
}

// servedBy reports whether a unit that clears from status from has done
// its part of the call: it reached the patient and, if it took one, the
// hospital. A unit that clears or stops before that leaves the patient
// without care: its assignment is aborted and the call reopened.
func servedBy(from, to UnitStatus) bool {
	switch from {
	case AtHospital:
		return true
	case OnScene:
		return to == Available // treated on scene, no transport
	}
	return false
}

// Status applies a crew status press from a terminal (telemetry.Sink). It
// moves the unit through its lifecycle, accepts an offered assignment
// implicitly once the crew is moving, and completes the assignment (and
// closes the call, when no other unit is on it) when the unit clears
// after doing its part.
//
// A press the lifecycle does not allow (a free unit pressing on_scene,
// dispatched -> at_hospital) changes nothing: the terminal gets a reject
// command saying why, and it is counted. A unit that stops or clears
// before it has done its part (out of service while en route, say) never
// closes the call: its assignment is aborted, the call goes back in the
// queue, reopened, and the dispatchers get an alert with the next
// candidate. A press older than the unit's last one (an MQTT redelivery
// out of order) is ignored.
//
// The press is stored before Status returns nil, so a terminal's PUBACK
// means the record has it; an error makes the broker redeliver it.
func (s *Service) Status(ctx context.Context, r telemetry.Status) error {
	to := UnitStatus(r.Status)
	if !to.Valid() || to == Dispatched {
		s.refusePress(ctx, r, "", fmt.Sprintf("%q is not a status a crew can press", r.Status))
		return nil
	}
	from, err := s.changeStatus(ctx, statusChange{unit: r.Unit, to: to, source: SourceTerminal, at: r.Time})
	switch {
	case errors.Is(err, errIgnore):
		return nil
	case errors.Is(err, errRefused):
		s.refusePress(ctx, r, from, fmt.Sprintf("cannot go from %s to %s", from, to))
		return nil
	}
	return err
}

// statusChange is a unit's move to a status: a crew press (source
// terminal), a dispatcher's word (dispatcher:<name>) or what telemetry
// shows (inferred).
type statusChange struct {
	unit   string
	to     UnitStatus
	source string
	at     time.Time
	// only, when set, applies the change only while the unit is still in
	// one of these statuses on incident (an inference made from them).
	only     []UnitStatus
	incident string
}

// changeStatus applies c under the lifecycle's rules and returns the
// status the unit had: errRefused when the lifecycle does not allow the
// move, errIgnore when there is nothing to change. A press older than
// the unit's last press is ignored. A unit that stops or clears before it
// has done its part aborts its assignment and the call is back in the
// queue, with an alert; a unit that starts transporting announces the
// patient to the advised hospital (prearrival).
func (s *Service) changeStatus(ctx context.Context, c statusChange) (UnitStatus, error) {
	s.decide.Lock()
	defer s.decide.Unlock()
	var (
		aborted *Assignment
		from    UnitStatus
	)
	d, err := s.decideAndCommit(ctx, func() (decision, error) {
		aborted = nil
		st, ok := s.pic.Unit(c.unit)
		if !ok {
			return decision{}, errIgnore // the pipeline only passes known units; the registry may have changed
		}
		from = st.Status
		if st.Status == c.to || (c.source == SourceTerminal && c.at.Before(st.PressAt)) {
			return decision{}, errIgnore
		}
		if c.only != nil && (!slices.Contains(c.only, st.Status) || st.Incident != c.incident) {
			return decision{}, errIgnore // the unit moved on since the inference
		}
		if !canPress(st.Status, c.to) {
			return decision{}, errRefused
		}
		now := s.now().UTC()
		incident, asg := st.Incident, st.Assignment
		var d decision
		if asg != "" {
			a, err := s.store.Assignment(ctx, asg)
			if err != nil {
				return decision{}, fmt.Errorf("status of %s: %w", c.unit, err)
			}
			inc, err := s.store.Incident(ctx, a.Incident)
			if err != nil {
				return decision{}, fmt.Errorf("status of %s: %w", c.unit, err)
			}
			status := a.Status
			switch {
			case c.to == Available || c.to == OutOfService:
				status = AssignCompleted
				if !servedBy(st.Status, c.to) {
					status, aborted = AssignAborted, a
				}
				incident, asg = "", ""
			case status == AssignOffered:
				status = AssignAccepted
			}
			if status != a.Status {
				na := nextAssignment(a, status, c.at)
				if status == AssignAborted {
					na.Reason = fmt.Sprintf("unit %s %s while %s", pressedBy(c.source), c.to, st.Status)
				}
				d.change.Assignments = []*Assignment{na}
				as, err := s.store.Assignments(ctx, a.Incident)
				if err != nil {
					return decision{}, fmt.Errorf("status of %s: %w", c.unit, err)
				}
				d.change.Incident = withStatus(inc, replace(as, na), now)
			}
			d.incident = inc
			if d.change.Incident != nil {
				d.incident = d.change.Incident
			}
		}
		rec, t := move(st, c.to, incident, asg, c.source, c.at)
		d.change.Units = []UnitRecord{rec}
		d.change.Transitions = []Transition{t}
		return d, nil
	})
	if err != nil {
		return from, err
	}
	if aborted != nil {
		s.abortAlert(ctx, aborted, d.incident, fmt.Sprintf("unit %s %s %s while %s: the call is back in the queue", c.unit, pressedBy(c.source), c.to, from))
	}
	if c.to == Transporting && d.incident != nil {
		s.prearrival(ctx, c.unit, d.incident)
	}
	return from, nil
}

// pressedBy says who moved a unit, for messages: "pressed" for its crew,
// "was set" for anyone else.
func pressedBy(source string) string {
	if source == SourceTerminal {
		return "pressed"
	}
	return "was set " + source + " to"
}

// errIgnore and errRefused end a decision that changes nothing.
var (
	errIgnore  = errors.New("nothing to change")
	errRefused = errors.New("refused")
)

// refusePress tells the terminal why its press changed nothing and counts it.
func (s *Service) refusePress(ctx context.Context, r telemetry.Status, from UnitStatus, why string) {
	s.metrics.pressRefused.WithLabelValues(string(from), r.Status).Inc()
	s.log.Warn("status press refused", "unit", r.Unit, "from", from, "to", r.Status, "why", why)
	s.sendNow(ctx, r.Unit, telemetry.Command{Type: telemetry.CommandReject, Status: r.Status, Reason: why})
}

// abortAlert tells the dispatchers that a unit could not go on with a
// call: the call is back in the queue, with the next candidate.
func (s *Service) abortAlert(ctx context.Context, a *Assignment, inc *Incident, msg string) {
	al := &Alert{Kind: AlertAborted, Incident: a.Incident, Unit: a.Unit, Assignment: a.ID, Message: msg, At: s.now().UTC()}
	if inc != nil {
		if recs := s.rank(ctx, inc); len(recs.Candidates) > 0 {
			al.Next = &recs.Candidates[0]
		}
	}
	s.alert(al, inc)
}

// alert publishes al to the consoles of inc's jurisdiction.
func (s *Service) alert(al *Alert, inc *Incident) {
	jur := ""
	if inc != nil {
		jur = inc.Jurisdiction
	} else if st, ok := s.pic.Unit(al.Unit); ok {
		jur = st.Jurisdiction
	}
	s.log.Warn("alert", "kind", al.Kind, "incident", al.Incident, "unit", al.Unit, "message", al.Message)
	s.events.Publish(Event{Type: EventAlert, Alert: al, Jurisdiction: jur})
}

// Ack applies a terminal's answer to an assign command (telemetry.Sink).
// A decline frees the unit, reopens the incident when no other unit is
// on it, and alerts the dispatchers with the next candidate.
func (s *Service) Ack(ctx context.Context, r telemetry.Ack) error {
	s.decide.Lock()
	defer s.decide.Unlock()
	var declined *Assignment
	d, err := s.decideAndCommit(ctx, func() (decision, error) {
		declined = nil
		a, err := s.store.Assignment(ctx, r.Assignment)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				s.log.Warn("ack for an unknown assignment", "unit", r.Unit, "assignment", r.Assignment)
				return decision{}, errIgnore
			}
			return decision{}, fmt.Errorf("ack of %s: %w", r.Unit, err)
		}
		if a.Unit != r.Unit {
			s.log.Warn("ack refused: assignment belongs to another unit", "unit", r.Unit, "assignment", r.Assignment, "owner", a.Unit)
			return decision{}, errIgnore
		}
		if a.Status != AssignOffered {
			return decision{}, errIgnore // a duplicate, or the crew already moved on
		}
		if r.Accepted {
			return decision{change: Change{Assignments: []*Assignment{nextAssignment(a, AssignAccepted, r.Time)}}}, nil
		}
		na := nextAssignment(a, AssignDeclined, r.Time)
		na.Reason = r.Reason
		declined = na
		inc, err := s.store.Incident(ctx, a.Incident)
		if err != nil {
			return decision{}, fmt.Errorf("ack of %s: %w", r.Unit, err)
		}
		as, err := s.store.Assignments(ctx, a.Incident)
		if err != nil {
			return decision{}, fmt.Errorf("ack of %s: %w", r.Unit, err)
		}
		d := decision{change: Change{Assignments: []*Assignment{na}, Incident: withStatus(inc, replace(as, na), s.now().UTC())}, incident: inc}
		if d.change.Incident != nil {
			d.incident = d.change.Incident
		}
		if st, ok := s.pic.Unit(r.Unit); ok && st.Assignment == a.ID {
			rec, t := move(st, Available, "", "", SourceTerminal, r.Time)
			rec.PressAt = st.PressAt // an ack is not a status press
			d.change.Units, d.change.Transitions = []UnitRecord{rec}, []Transition{t}
		}
		return d, nil
	})
	switch {
	case errors.Is(err, errIgnore):
		return nil
	case err != nil:
		return err
	}
	if declined != nil {
		msg := fmt.Sprintf("unit %s declined the call", r.Unit)
		if r.Reason != "" {
			msg += ": " + r.Reason
		}
		al := &Alert{Kind: AlertDeclined, Incident: declined.Incident, Unit: r.Unit, Assignment: declined.ID, Message: msg, At: s.now().UTC()}
		if recs := s.rank(ctx, d.incident); len(recs.Candidates) > 0 {
			al.Next = &recs.Candidates[0]
		}
		s.alert(al, d.incident)
	}
	return nil
}

// EndIncident closes or cancels a call on behalf of by, with the outcome
// the dispatcher records ("transported", "false alarm", "test call").
//
// Cancelling stands every unit still on the call down: each active
// assignment is cancelled, its unit is available again and its terminal
// gets a cancel command. Closing is for a call whose units have all
// cleared: while a unit is still on it the answer is a conflict, so that
// a live call is never closed by mistake (cancel it, or stand the unit
// down first). An integrator may not end a call.
func (s *Service) EndIncident(ctx context.Context, by Principal, id string, status IncidentStatus, outcome string) (*Incident, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	if status != IncidentClosed && status != IncidentCancelled {
		return nil, Errorf(CodeInvalid, "status %q: a call ends closed or cancelled", status)
	}
	if err := checkText("outcome", outcome, 500); err != nil {
		return nil, err
	}
	if by.Role == RoleIntegrator {
		return nil, Errorf(CodeForbidden, "an integrator may not end calls: a dispatcher does")
	}
	s.decide.Lock()
	var stood []*Assignment
	d, err := s.decideAndCommit(ctx, func() (decision, error) {
		stood = nil
		inc, err := s.Incident(ctx, by, id)
		if err != nil {
			return decision{}, err
		}
		if inc.Status == IncidentClosed || inc.Status == IncidentCancelled {
			return decision{}, Errorf(CodeConflict, "incident %s is already %s", id, inc.Status)
		}
		as, err := s.store.Assignments(ctx, id)
		if err != nil {
			return decision{}, fmt.Errorf("end incident %s: %w", id, err)
		}
		now := s.now().UTC()
		var c Change
		for _, a := range as {
			if !a.Status.Active() {
				continue
			}
			if status == IncidentClosed {
				return decision{}, Errorf(CodeConflict, "unit %s is still on incident %s (%s): stand it down or cancel the call", a.Unit, id, a.Status)
			}
			na := nextAssignment(a, AssignCancelled, now)
			na.Reason = "call cancelled by " + by.Name
			c.Assignments = append(c.Assignments, na)
			c.Commands = append(c.Commands, s.cancelCommand(na, "call cancelled", now))
			stood = append(stood, na)
			if st, ok := s.pic.Unit(a.Unit); ok && st.Assignment == a.ID {
				rec, t := move(st, Available, "", "", sourceDispatcher+by.Name, now)
				c.Units, c.Transitions = append(c.Units, rec), append(c.Transitions, t)
			}
		}
		c.Incident = next(inc, now)
		c.Incident.Status, c.Incident.Outcome, c.Incident.ClosedAt = status, outcome, now
		return decision{change: c, incident: c.Incident}, nil
	})
	s.decide.Unlock()
	if err != nil {
		return nil, err
	}
	s.audit.append(ctx, by.Name, AuditIncidentEnd, id, map[string]any{"status": status, "outcome": outcome, "stood_down": len(stood)})
	s.deliver(ctx, d.change.Commands)
	return d.incident, nil
}

// CancelAssignment stands one unit down from a call on behalf of by: the
// assignment is cancelled, the unit is available again, its terminal gets
// a cancel command, and the call goes back in the queue when no other
// unit is on it.
func (s *Service) CancelAssignment(ctx context.Context, by Principal, incidentID, assignmentID, reason string) (*Assignment, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	if by.Role == RoleIntegrator {
		return nil, Errorf(CodeForbidden, "an integrator may not stand units down: a dispatcher does")
	}
	if err := checkText("reason", reason, 500); err != nil {
		return nil, err
	}
	s.decide.Lock()
	var na *Assignment
	d, err := s.decideAndCommit(ctx, func() (decision, error) {
		inc, err := s.Incident(ctx, by, incidentID)
		if err != nil {
			return decision{}, err
		}
		a, err := s.store.Assignment(ctx, assignmentID)
		if err != nil {
			return decision{}, err
		}
		if a.Incident != inc.ID {
			return decision{}, Errorf(CodeNotFound, "assignment %s is not on incident %s", assignmentID, incidentID)
		}
		if !a.Status.Active() {
			return decision{}, Errorf(CodeConflict, "assignment %s is already %s", assignmentID, a.Status)
		}
		now := s.now().UTC()
		na = nextAssignment(a, AssignCancelled, now)
		na.Reason = reason
		if na.Reason == "" {
			na.Reason = "stood down by " + by.Name
		}
		as, err := s.store.Assignments(ctx, inc.ID)
		if err != nil {
			return decision{}, fmt.Errorf("cancel assignment %s: %w", assignmentID, err)
		}
		d := decision{change: Change{Assignments: []*Assignment{na}, Incident: withStatus(inc, replace(as, na), now)}, incident: inc}
		if d.change.Incident != nil {
			d.incident = d.change.Incident
		}
		if st, ok := s.pic.Unit(a.Unit); ok && st.Assignment == a.ID {
			rec, t := move(st, Available, "", "", sourceDispatcher+by.Name, now)
			d.change.Units, d.change.Transitions = []UnitRecord{rec}, []Transition{t}
		}
		d.change.Commands = []OutboxCommand{s.cancelCommand(na, na.Reason, now)}
		return d, nil
	})
	s.decide.Unlock()
	if err != nil {
		return nil, err
	}
	s.audit.append(ctx, by.Name, AuditStandDown, incidentID, map[string]any{"assignment": assignmentID, "unit": na.Unit, "reason": na.Reason})
	s.deliver(ctx, d.change.Commands)
	return na, nil
}

// checkText refuses free text that is too long or holds control
// characters other than tab and newline.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return Errorf(CodeInvalid, "%s: at most %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalid, "%s: not UTF-8", field)
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f {
			return Errorf(CodeInvalid, "%s: control character %U", field, r)
		}
	}
	return nil
}
