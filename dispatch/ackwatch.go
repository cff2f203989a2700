package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// AckPolicy is what happens when a terminal does not acknowledge an
// assignment in time.
type AckPolicy string

// Ack timeout policies. Each raises an ack_timeout alert.
const (
	// AckAlert only tells the dispatchers.
	AckAlert AckPolicy = "alert"
	// AckOffer names the next candidate in the alert; the dispatcher
	// decides. The default.
	AckOffer AckPolicy = "offer"
	// AckReassign stands the silent unit down (its terminal gets a
	// cancel) and assigns the next candidate in the same decision, so
	// that one unit is asked where one was asked. With no candidate the
	// silent assignment stays.
	AckReassign AckPolicy = "reassign"
)

// DefaultAckTimeout is how long a terminal has to acknowledge an assignment.
const DefaultAckTimeout = 30 * time.Second

// ackTimeoutReason starts the reason of an assignment cancelled because
// its terminal stayed silent; such a unit is not assigned the call again.
const ackTimeoutReason = "no ack within "

// AckWatch raises the alarm when a terminal does not acknowledge an
// assignment: an offered assignment older than the timeout in the record
// (so the time is right across restarts) raises one ack_timeout alert
// and, per policy, names or assigns the next candidate. After a restart
// an assignment still unanswered is alerted once more: the consoles lost
// the first alert with their connection.
type AckWatch struct {
	s       *Service
	timeout time.Duration
	policy  AckPolicy
	every   time.Duration

	mu      sync.Mutex
	alerted map[string]bool // assignments alerted, while they stay offered
}

// NewAckWatch returns the ack watch of s: timeout is how long a terminal
// has to answer (DefaultAckTimeout when 0 or less), policy what happens
// then (AckOffer when empty).
func NewAckWatch(s *Service, timeout time.Duration, policy AckPolicy) (*AckWatch, error) {
	switch policy {
	case "":
		policy = AckOffer
	case AckAlert, AckOffer, AckReassign:
	default:
		return nil, Errorf(CodeInvalid, "ack timeout policy %q: want alert, offer or reassign", policy)
	}
	if timeout <= 0 {
		timeout = DefaultAckTimeout
	}
	every := min(max(timeout/10, 10*time.Millisecond), time.Second)
	return &AckWatch{s: s, timeout: timeout, policy: policy, every: every, alerted: map[string]bool{}}, nil
}

// Run checks the record every tenth of the timeout (at most every second)
// until ctx ends.
func (w *AckWatch) Run(ctx context.Context) error {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
				w.s.log.Error("ack watch", "err", err)
			}
		}
	}
}

// Sweep handles every offered assignment whose terminal has not answered
// within the timeout, once each.
func (w *AckWatch) Sweep(ctx context.Context) error {
	active, err := w.s.store.ActiveAssignments(ctx)
	if err != nil {
		return err
	}
	now := w.s.now()
	offered := map[string]bool{}
	for _, a := range active {
		if a.Status != AssignOffered {
			continue
		}
		offered[a.ID] = true
		w.mu.Lock()
		done := w.alerted[a.ID]
		w.mu.Unlock()
		if done || now.Sub(a.CreatedAt) < w.timeout {
			continue
		}
		if err := w.timedOut(ctx, a); err != nil {
			w.s.log.Error("ack watch: an unanswered assignment", "assignment", a.ID, "unit", a.Unit, "err", err)
			continue
		}
		w.mu.Lock()
		w.alerted[a.ID] = true
		w.mu.Unlock()
	}
	w.mu.Lock()
	for id := range w.alerted {
		if !offered[id] {
			delete(w.alerted, id)
		}
	}
	w.mu.Unlock()
	return nil
}

// timedOut handles one unanswered assignment per policy.
func (w *AckWatch) timedOut(ctx context.Context, a *Assignment) error {
	s := w.s
	inc, err := s.store.Incident(ctx, a.Incident)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("unit %s has not acknowledged the call within %s", a.Unit, w.timeout)
	al := &Alert{Kind: AlertAckTimeout, Incident: a.Incident, Unit: a.Unit, Assignment: a.ID}
	switch w.policy {
	case AckOffer:
		if next, ok := w.next(ctx, inc); ok {
			al.Next = &next
			msg += fmt.Sprintf(": next candidate %s", next.Unit)
		}
	case AckReassign:
		na, next, cmds, err := w.reassign(ctx, a)
		switch {
		case errors.Is(err, errIgnore):
			return nil // answered or ended meanwhile
		case errors.Is(err, errNoCandidate):
			msg += ": no other unit to assign, it stays assigned"
		case err != nil:
			return err
		default:
			al.Next = &next
			msg += fmt.Sprintf(": stood down, %s assigned instead", next.Unit)
			s.audit.append(ctx, System.Name, AuditReassign, inc.ID, map[string]any{
				"reason": "ack_timeout", "from_assignment": a.ID, "from_unit": a.Unit, "assignment": na.ID, "unit": na.Unit,
			})
			s.deliver(ctx, cmds)
		}
	}
	al.Message, al.At = msg, s.now().UTC()
	s.alert(al, inc)
	return nil
}

// errNoCandidate: no unit to reassign a call to.
var errNoCandidate = errors.New("no candidate")

// next is the best candidate for inc that has not stayed silent on it.
func (w *AckWatch) next(ctx context.Context, inc *Incident) (Recommendation, bool) {
	silent := w.silent(ctx, inc.ID)
	for _, r := range w.s.rank(ctx, inc).Candidates {
		if !silent[r.Unit] {
			return r, true
		}
	}
	return Recommendation{}, false
}

// silent returns the units whose assignments to incident were stood down
// for not answering.
func (w *AckWatch) silent(ctx context.Context, incident string) map[string]bool {
	as, err := w.s.store.Assignments(ctx, incident)
	if err != nil {
		w.s.log.Warn("ack watch: assignments of a call", "incident", incident, "err", err)
		return nil
	}
	out := map[string]bool{}
	for _, a := range as {
		if a.Status == AssignCancelled && strings.HasPrefix(a.Reason, ackTimeoutReason) {
			out[a.Unit] = true
		}
	}
	return out
}

// reassign stands a's unit down and assigns the next candidate, in one
// decision: a is cancelled, its unit available, the candidate dispatched
// on a new assignment, with a cancel for the one and an assign for the
// other in the outbox. errIgnore when a was answered or ended meanwhile,
// errNoCandidate when there is no other unit.
func (w *AckWatch) reassign(ctx context.Context, a *Assignment) (*Assignment, Recommendation, []OutboxCommand, error) {
	s := w.s
	var (
		na   *Assignment
		pick Recommendation
	)
	s.decide.Lock()
	defer s.decide.Unlock()
	d, err := s.decideAndCommit(ctx, func() (decision, error) {
		cur, err := s.store.Assignment(ctx, a.ID)
		if err != nil {
			return decision{}, err
		}
		if cur.Status != AssignOffered {
			return decision{}, errIgnore
		}
		inc, err := s.store.Incident(ctx, cur.Incident)
		if err != nil {
			return decision{}, err
		}
		if inc.Status == IncidentClosed || inc.Status == IncidentCancelled {
			return decision{}, errIgnore
		}
		var ok bool
		if pick, ok = w.next(ctx, inc); !ok {
			return decision{}, errNoCandidate
		}
		cand, err := s.unit(pick.Unit)
		if err != nil {
			return decision{}, err
		}
		if cand.Status != Available {
			return decision{}, errNoCandidate // ranked from an older picture
		}
		now := s.now().UTC()
		ended := nextAssignment(cur, AssignCancelled, now)
		ended.Reason = fmt.Sprintf("%s%s: reassigned to %s", ackTimeoutReason, w.timeout, pick.Unit)
		na = &Assignment{ID: newID("ASG", now), Incident: inc.ID, Unit: pick.Unit, Status: AssignOffered, By: System.Name, Version: 1, CreatedAt: now, UpdatedAt: now}
		c := Change{Assignments: []*Assignment{ended, na}}
		c.Incident = next(inc, now)
		c.Incident.Status = IncidentAssigned
		if st, ok := s.pic.Unit(cur.Unit); ok && st.Assignment == cur.ID {
			rec, t := move(st, Available, "", "", SourceSystem, now)
			c.Units, c.Transitions = append(c.Units, rec), append(c.Transitions, t)
		}
		rec, t := move(cand, Dispatched, inc.ID, na.ID, SourceSystem, now)
		c.Units, c.Transitions = append(c.Units, rec), append(c.Transitions, t)
		c.Commands = []OutboxCommand{s.cancelCommand(ended, "not acknowledged: reassigned", now), s.assignCommand(ctx, na, c.Incident, now)}
		return decision{change: c, incident: c.Incident}, nil
	})
	if err != nil {
		return nil, Recommendation{}, nil, err
	}
	return na, pick, d.change.Commands, nil
}
