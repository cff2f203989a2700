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
// consent, which Request asks for). Every assignment is audited under
// by's name.
func (s *Service) Assign(ctx context.Context, by Principal, incidentID, unitID string) (*Assignment, error) {
	a, _, err := s.request(ctx, by, incidentID, unitID, false)
	return a, err
}

// Request is Assign as a console makes it: when the unit belongs to
// another county of the same city that by's scope does not cover, it asks
// that county's consent instead of refusing, and returns the pending
// request with no assignment. When the owning county accepts every
// request (its policy is auto), the assignment is made at once with the
// request recorded as accepted.
//
// A user whose scope covers the unit but not the call's county (a city
// user) sends it without consent; the assignment comes with a consent
// record of status notified that tells the owning county. Whenever a unit
// is assigned, the pending requests it makes moot end void in the same
// transaction: a request for that unit (its requester is told) and
// another request for the same call (it has its unit).
//
// Asking again for the same unit and call returns the pending request. A
// unit already asked for another call is a conflict: one request per unit
// at a time. A new request for a call withdraws the call's pending one.
func (s *Service) Request(ctx context.Context, by Principal, incidentID, unitID string) (*Assignment, *Consent, error) {
	return s.request(ctx, by, incidentID, unitID, true)
}

// assigned is what an assignment decision did.
type assigned struct {
	a       *Assignment
	inc     *Incident
	again   bool            // the incident had an assignment before
	consent *Consent        // the request asked, or the record of the borrow
	asked   bool            // consent is a new pending request
	steps   []consentStep   // every consent change stored
	cmds    []OutboxCommand // the assign command stored with the assignment, to deliver
}

// request assigns, or asks for consent when ask is set.
func (s *Service) request(ctx context.Context, by Principal, incidentID, unitID string, ask bool) (*Assignment, *Consent, error) {
	if err := s.allowed(by); err != nil {
		return nil, nil, err
	}
	if by.Role == RoleIntegrator {
		s.denied(ctx, by, incidentID, unitID, "integrator")
		return nil, nil, Errorf(CodeForbidden, "an integrator may not assign units: a dispatcher decides who goes")
	}
	s.decide.Lock()
	o, err := s.assign(ctx, by, incidentID, unitID, ask)
	s.decide.Unlock()
	if err != nil {
		if errors.Is(err, errForbidden) {
			s.denied(ctx, by, incidentID, unitID, ErrorMessage(err))
		}
		return nil, nil, err
	}
	s.consentSteps(ctx, by.Name, o.steps)
	if o.asked {
		s.asked()
	}
	if o.a == nil {
		return nil, o.consent, nil
	}
	detail := map[string]any{"assignment": o.a.ID, "unit": unitID, "role": by.Role, "reassign": o.again}
	if o.consent != nil {
		detail["consent"] = o.consent.ID
	}
	s.audit.append(ctx, by.Name, AuditAssign, o.inc.ID, detail)
	s.deliver(ctx, o.cmds)
	return o.a, o.consent, nil
}

var errForbidden = &Error{Code: CodeForbidden}

func (s *Service) denied(ctx context.Context, by Principal, incident, unit, why string) {
	s.audit.append(ctx, by.Name, AuditACLDenied, incident, map[string]string{"action": "assign", "unit": unit, "why": why})
}

// assign does the checks and stores, in one compare-and-set, either the
// assignment, the unit's move to dispatched, the incident's move to
// assigned and the consent changes that go with them, or a new consent
// request. The caller holds s.decide.
func (s *Service) assign(ctx context.Context, by Principal, incidentID, unitID string, ask bool) (o assigned, err error) {
	_, err = s.decideAndCommit(ctx, func() (decision, error) {
		o = assigned{}
		cur, err := s.Incident(ctx, by, incidentID)
		if err != nil {
			return decision{}, err
		}
		st, err := s.unit(unitID)
		if err != nil {
			return decision{}, err
		}
		asking := !by.Sees(s.area, st.Jurisdiction)
		if asking {
			switch {
			case !ask:
				return decision{}, Errorf(CodeForbidden, "unit %s belongs to jurisdiction %s: sending another county's unit needs the owning county's consent", unitID, st.Jurisdiction)
			case !s.sameCity(by, st.Jurisdiction):
				return decision{}, Errorf(CodeForbidden, "unit %s belongs to jurisdiction %s, outside your city: no consent can be asked for it", unitID, st.Jurisdiction)
			case s.consents == nil:
				return decision{}, errNoConsents
			}
		}
		if cur.Status == IncidentClosed || cur.Status == IncidentCancelled {
			return decision{}, Errorf(CodeConflict, "incident %s is %s", cur.ID, cur.Status)
		}
		if st.Status != Available {
			return decision{}, Errorf(CodeConflict, "unit %s is no longer available (%s)", unitID, busy(st))
		}
		pending, err := s.pendingConsents(ctx)
		if err != nil {
			return decision{}, err
		}
		now := s.now().UTC()
		var c *Consent
		if asking {
			for _, p := range pending {
				switch {
				case p.Unit != unitID:
				case p.Incident == cur.ID:
					o.consent = p
					return decision{}, errAsked
				default:
					return decision{}, Errorf(CodeConflict, "unit %s is already asked for by county %s for another call (consent %s, pending until %s)", unitID, p.To, p.ID, p.ExpiresAt.Format("15:04:05Z07:00"))
				}
			}
			auto, err := s.autoAccepts(ctx, st.Jurisdiction)
			if err != nil {
				return decision{}, err
			}
			c = &Consent{
				ID: newID("CNS", now), Status: ConsentPending, Incident: cur.ID, Unit: unitID, From: st.Jurisdiction, To: cur.Jurisdiction,
				Priority: cur.Priority, Category: cur.Category, Location: cur.Location, RequestedBy: by.Name,
				Version: 1, CreatedAt: now, ExpiresAt: now.Add(s.consentTTL),
			}
			o.consent = c
			if !auto {
				o.asked = true
				ch := Change{Consents: []*Consent{c}}
				o.steps = []consentStep{{c, stepRequested, ""}}
				for _, p := range pending {
					if p.Incident == cur.ID { // a new request for the call withdraws the one pending
						v := ended(p, ConsentVoid, by.Name, fmt.Sprintf("withdrawn: %s asked for unit %s instead", by.Name, unitID), now)
						ch.Consents, o.steps = append(ch.Consents, v), append(o.steps, consentStep{v, stepVoid, ""})
					}
				}
				return decision{change: ch}, nil
			}
			c.Status, c.DecidedBy, c.Reason, c.DecidedAt, c.ExpiresAt = ConsentAccepted, System.Name, "county "+st.Jurisdiction+" accepts every request (auto)", now, time.Time{}
		} else if !s.area.Within(st.Jurisdiction, cur.Jurisdiction) && s.consents != nil {
			c = &Consent{
				ID: newID("CNS", now), Status: ConsentNotified, Incident: cur.ID, Unit: unitID, From: st.Jurisdiction, To: cur.Jurisdiction,
				Priority: cur.Priority, Category: cur.Category, Location: cur.Location, RequestedBy: by.Name, DecidedBy: by.Name,
				Reason: "sent by " + by.Name + " without consent: the owning county is notified", Version: 1, CreatedAt: now, DecidedAt: now,
			}
			o.consent = c
		}
		before, err := s.store.Assignments(ctx, cur.ID)
		if err != nil {
			return decision{}, fmt.Errorf("assign unit %s: %w", unitID, err)
		}
		o.again = len(before) > 0
		o.a = &Assignment{ID: newID("ASG", now), Incident: cur.ID, Unit: unitID, Status: AssignOffered, By: by.Name, Version: 1, CreatedAt: now, UpdatedAt: now}
		o.inc = next(cur, now)
		o.inc.Status = IncidentAssigned
		r, t := move(st, Dispatched, cur.ID, o.a.ID, sourceDispatcher+by.Name, now)
		ch := Change{Incident: o.inc, Assignments: []*Assignment{o.a}, Units: []UnitRecord{r}, Transitions: []Transition{t},
			Commands: []OutboxCommand{s.assignCommand(ctx, o.a, o.inc, now)}}
		o.cmds = ch.Commands
		if c != nil {
			c.Assignment = o.a.ID
			step := stepNotified
			if c.Status == ConsentAccepted {
				step = stepAuto
			}
			ch.Consents, o.steps = []*Consent{c}, []consentStep{{c, step, ""}}
		}
		ch.Consents, o.steps = s.settled(pending, cur.ID, unitID, "", by.Name, now, ch.Consents, o.steps)
		return decision{change: ch, incident: o.inc}, nil
	})
	if errors.Is(err, errAsked) {
		return o, nil
	}
	return o, err
}
