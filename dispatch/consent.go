package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ConsentStatus is where a request to borrow another county's unit is.
type ConsentStatus string

// Consent statuses. A request is pending until the owning county answers
// (accepted, declined), nobody answers in time (expired), or it stops
// making sense (void: the unit was sent elsewhere or is no longer
// available, the call ended or got another unit, the requester asked for
// another unit instead). Notified records a unit sent across a county
// line without a request, by someone whose scope covers the unit (a city
// user), so that the owning county is told.
const (
	ConsentPending  ConsentStatus = "pending"
	ConsentAccepted ConsentStatus = "accepted"
	ConsentDeclined ConsentStatus = "declined"
	ConsentExpired  ConsentStatus = "expired"
	ConsentVoid     ConsentStatus = "void"
	ConsentNotified ConsentStatus = "notified"
)

var consentStatuses = []ConsentStatus{ConsentPending, ConsentAccepted, ConsentDeclined, ConsentExpired, ConsentVoid, ConsentNotified}

// Valid reports whether s is a known consent status.
func (s ConsentStatus) Valid() bool { return slices.Contains(consentStatuses, s) }

// ConsentPolicy is how a county answers requests for its units.
type ConsentPolicy string

// Consent policies: ask (a dispatcher of the county answers each
// request; the default) or auto (every request is accepted at once).
const (
	ConsentAsk  ConsentPolicy = "ask"
	ConsentAuto ConsentPolicy = "auto"
)

// Valid reports whether p is a known policy.
func (p ConsentPolicy) Valid() bool { return p == ConsentAsk || p == ConsentAuto }

// ConsentDecision is an answer to a consent request.
type ConsentDecision string

// Answers to a consent request.
const (
	Accept  ConsentDecision = "accept"
	Decline ConsentDecision = "decline"
)

// DefaultConsentTimeout is how long a consent request waits for an answer.
const DefaultConsentTimeout = 60 * time.Second

// consentPoll bounds how long the expiry duty sleeps: requests made by
// another server are seen within it.
const consentPoll = time.Second

// Consent is a county's request to borrow a unit of another county of the
// same city for one of its calls, and its outcome. From is the county
// that owns the unit (and answers), To the county that asks. The call's
// priority, category and location are copied in, because the owning
// county cannot read the other county's call.
type Consent struct {
	ID          string        `json:"id"`
	Status      ConsentStatus `json:"status"`
	Incident    string        `json:"incident"`
	Unit        string        `json:"unit"`
	From        string        `json:"from"`
	To          string        `json:"to"`
	Priority    Priority      `json:"priority"`
	Category    Category      `json:"category"`
	Location    LatLon        `json:"location"`
	RequestedBy string        `json:"requested_by"`
	DecidedBy   string        `json:"decided_by,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	// Assignment is the assignment the consent made (accepted, notified).
	Assignment string `json:"assignment,omitempty"`
	// Version counts the changes of the consent (see Incident.Version):
	// an answer is a compare-and-set, so two answers give one outcome.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // pending requests only
	DecidedAt time.Time `json:"decided_at,omitzero"`
}

// ConsentFilter selects consents. Zero fields do not filter.
type ConsentFilter struct {
	Status   ConsentStatus
	Incident string
	Limit    int
}

// PolicyRecord is a county's consent policy as set over the API; it
// overrides the area file's.
type PolicyRecord struct {
	Jurisdiction string
	Consent      ConsentPolicy
	By           string
	At           time.Time
}

// Consents is the record of consent requests and policies. Consents are
// written with Store.Apply (Change.Consents), in the transaction of the
// decision they belong to; Consents reads them. Implementations:
// dispatch/memory and the durable stores.
type Consents interface {
	Consent(ctx context.Context, id string) (*Consent, error)
	// Consents returns the consents f selects, newest first.
	Consents(ctx context.Context, f ConsentFilter) ([]*Consent, error)
	// ConsentPolicies returns every policy set over the API, by jurisdiction.
	ConsentPolicies(ctx context.Context) ([]PolicyRecord, error)
	// SetConsentPolicy inserts or replaces the policy of p.Jurisdiction.
	SetConsentPolicy(ctx context.Context, p PolicyRecord) error
}

// JurisdictionPolicy is a jurisdiction with the consent policy that
// applies to its units now.
type JurisdictionPolicy struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Parent  string        `json:"parent,omitempty"`
	Consent ConsentPolicy `json:"consent"`
	// Source is where Consent comes from: record (set over the API),
	// area (the area file) or default.
	Source string    `json:"source"`
	SetBy  string    `json:"set_by,omitempty"`
	SetAt  time.Time `json:"set_at,omitzero"`
}

// Steps of a consent, as the audit log records them.
const (
	stepRequested = "requested"
	stepAccepted  = "accepted"
	stepAuto      = "auto"
	stepDeclined  = "declined"
	stepExpired   = "expired"
	stepVoid      = "void"
	stepNotified  = "notified"
)

// consentStep is one change of a consent, as the audit log, both
// counties' consoles and, when alert is set, the requesting dispatcher
// are told of it.
type consentStep struct {
	c     *Consent
	step  string
	alert AlertKind
}

// errAsked ends a decision that found the request already made.
var errAsked = errors.New("consent already asked")

// AnswerConsent answers a pending consent request on behalf of by, a
// dispatcher of the county that owns the unit or a user whose scope
// covers it (a city user). The answer is a compare-and-set on the
// request: of two answers at once, or an answer and the expiry, one wins
// and the other is a conflict.
//
// Accepting makes the assignment in the same transaction as the answer
// and sends the unit its assign command. When the unit is no longer
// available, or the call has ended, by then, the request ends void and
// the answer is a conflict saying why: never two units where one was
// asked, never a unit sent to a closed call. Declining, like expiry,
// tells the requesting county with an alert that names the next
// candidate.
func (s *Service) AnswerConsent(ctx context.Context, by Principal, id string, answer ConsentDecision, reason string) (*Consent, *Assignment, error) {
	if err := s.allowed(by); err != nil {
		return nil, nil, err
	}
	if by.Role == RoleIntegrator {
		return nil, nil, Errorf(CodeForbidden, "an integrator may not answer consent requests: a dispatcher does")
	}
	if answer != Accept && answer != Decline {
		return nil, nil, Errorf(CodeInvalid, "decision %q: want accept or decline", answer)
	}
	if err := checkText("reason", reason, 500); err != nil {
		return nil, nil, err
	}
	if s.consents == nil {
		return nil, nil, errNoConsents
	}
	var (
		c       *Consent
		a       *Assignment
		inc     *Incident
		cmds    []OutboxCommand // the assign command stored with an accept
		steps   []consentStep
		refused error // the answer's error once what it found is stored
	)
	s.decide.Lock()
	_, err := s.decideAndCommit(ctx, func() (decision, error) {
		c, a, inc, cmds, steps, refused = nil, nil, nil, nil, nil, nil
		cur, err := s.consents.Consent(ctx, id)
		if err != nil {
			return decision{}, err
		}
		if !by.Sees(s.area, cur.From) {
			return decision{}, Errorf(CodeForbidden, "consent %s asks county %s for its unit: its dispatchers or a city user above it answer", id, cur.From)
		}
		if cur.Status != ConsentPending {
			return decision{}, Errorf(CodeConflict, "consent %s is already %s%s", id, cur.Status, byWhom(cur.DecidedBy))
		}
		now := s.now().UTC()
		if !now.Before(cur.ExpiresAt) {
			c = s.expired(cur, now)
			steps, refused = []consentStep{{c, stepExpired, AlertConsentExpired}}, Errorf(CodeConflict, "consent %s expired at %s", id, cur.ExpiresAt.Format(time.RFC3339))
			return decision{change: Change{Consents: []*Consent{c}}}, nil
		}
		if answer == Decline {
			c = ended(cur, ConsentDeclined, by.Name, reason, now)
			steps = []consentStep{{c, stepDeclined, AlertConsentDeclined}}
			return decision{change: Change{Consents: []*Consent{c}}}, nil
		}
		cur2, err := s.store.Incident(ctx, cur.Incident)
		if err != nil {
			return decision{}, fmt.Errorf("answer consent %s: %w", id, err)
		}
		if cur2.Status == IncidentClosed || cur2.Status == IncidentCancelled {
			c = ended(cur, ConsentVoid, by.Name, fmt.Sprintf("the call was %s before the answer", cur2.Status), now)
			steps, refused = []consentStep{{c, stepVoid, ""}}, Errorf(CodeConflict, "incident %s is %s: consent %s is void", cur2.ID, cur2.Status, id)
			return decision{change: Change{Consents: []*Consent{c}}}, nil
		}
		st, err := s.unit(cur.Unit)
		if err != nil {
			return decision{}, err
		}
		if st.Status != Available {
			why := busy(st)
			c = ended(cur, ConsentVoid, by.Name, fmt.Sprintf("unit %s was no longer available (%s)", cur.Unit, why), now)
			steps, refused = []consentStep{{c, stepVoid, AlertConsentVoid}}, Errorf(CodeConflict, "unit %s is no longer available (%s): consent %s is void", cur.Unit, why, id)
			return decision{change: Change{Consents: []*Consent{c}}}, nil
		}
		pending, err := s.pendingConsents(ctx)
		if err != nil {
			return decision{}, err
		}
		a = &Assignment{ID: newID("ASG", now), Incident: cur2.ID, Unit: cur.Unit, Status: AssignOffered, By: cur.RequestedBy, Version: 1, CreatedAt: now, UpdatedAt: now}
		inc = next(cur2, now)
		inc.Status = IncidentAssigned
		r, t := move(st, Dispatched, cur2.ID, a.ID, sourceDispatcher+cur.RequestedBy, now)
		c = ended(cur, ConsentAccepted, by.Name, reason, now)
		c.Assignment = a.ID
		steps = []consentStep{{c, stepAccepted, ""}}
		ch := Change{Incident: inc, Assignments: []*Assignment{a}, Units: []UnitRecord{r}, Transitions: []Transition{t}, Consents: []*Consent{c},
			Commands: []OutboxCommand{s.assignCommand(ctx, a, inc, now)}}
		cmds = ch.Commands
		ch.Consents, steps = s.settled(pending, cur2.ID, cur.Unit, cur.ID, by.Name, now, ch.Consents, steps)
		return decision{change: ch, incident: inc}, nil
	})
	s.decide.Unlock()
	if err != nil {
		if errors.Is(err, errForbidden) {
			s.audit.append(ctx, by.Name, AuditACLDenied, id, map[string]string{"action": "answer_consent", "why": ErrorMessage(err)})
		}
		return nil, nil, err
	}
	s.consentSteps(ctx, by.Name, steps)
	if refused != nil {
		return nil, nil, refused
	}
	if a != nil {
		s.audit.append(ctx, c.RequestedBy, AuditAssign, inc.ID, map[string]any{"assignment": a.ID, "unit": a.Unit, "consent": c.ID, "accepted_by": by.Name})
		s.deliver(ctx, cmds)
	}
	return c, a, nil
}

// errNoConsents answers a consent action on a record that keeps none.
var errNoConsents = Errorf(CodeUnavailable, "this record keeps no consent requests")

// byWhom is " by name", or "" for nobody.
func byWhom(name string) string {
	if name == "" {
		return ""
	}
	return " by " + name
}

// busy says what a unit that is not available is doing.
func busy(st UnitState) string {
	why := string(st.Status)
	if st.Incident != "" {
		why += " on " + st.Incident
	}
	return why
}

// ended returns c, one version on, ended with status by by for reason at now.
func ended(c *Consent, status ConsentStatus, by, reason string, now time.Time) *Consent {
	e := *c
	e.Version++
	e.Status, e.DecidedBy, e.Reason, e.DecidedAt = status, by, reason, now
	return &e
}

// expired returns c ended by its expiry.
func (s *Service) expired(c *Consent, now time.Time) *Consent {
	return ended(c, ConsentExpired, System.Name, fmt.Sprintf("no answer within %s", c.ExpiresAt.Sub(c.CreatedAt).Round(time.Second)), now)
}

// settled ends the pending requests that an assignment of unit to
// incident makes moot, but keep: a request for the same unit (it is
// taken: the requester is told and offered the next candidate) and any
// other request for the same call (it has its unit). It returns cs and
// steps with them added.
func (s *Service) settled(pending []*Consent, incident, unit, keep, by string, now time.Time, cs []*Consent, steps []consentStep) ([]*Consent, []consentStep) {
	for _, p := range pending {
		switch {
		case p.ID == keep:
		case p.Unit == unit:
			v := ended(p, ConsentVoid, by, fmt.Sprintf("unit %s was sent to %s", unit, incident), now)
			cs, steps = append(cs, v), append(steps, consentStep{v, stepVoid, AlertConsentVoid})
		case p.Incident == incident:
			v := ended(p, ConsentVoid, by, fmt.Sprintf("the call got unit %s", unit), now)
			cs, steps = append(cs, v), append(steps, consentStep{v, stepVoid, ""})
		}
	}
	return cs, steps
}

// consentSteps tells of stored consent changes: a consent message to the
// consoles of both counties, an audit entry under actor, and to the
// requesting county an alert naming the next candidate where it must act.
func (s *Service) consentSteps(ctx context.Context, actor string, steps []consentStep) {
	for _, st := range steps {
		c := st.c
		s.events.Publish(Event{Type: EventConsent, Consent: c, Jurisdiction: c.To, Also: []string{c.From}})
		detail := map[string]any{"step": st.step, "consent": c.ID, "unit": c.Unit, "from": c.From, "to": c.To}
		if c.Reason != "" {
			detail["reason"] = c.Reason
		}
		if c.Assignment != "" {
			detail["assignment"] = c.Assignment
		}
		s.audit.append(ctx, actor, AuditConsent, c.Incident, detail)
		if st.alert == "" {
			continue
		}
		inc, err := s.store.Incident(ctx, c.Incident)
		if err != nil {
			s.log.Error("consent alert: the call", "consent", c.ID, "incident", c.Incident, "err", err)
			continue
		}
		what := map[AlertKind]string{AlertConsentDeclined: "declined", AlertConsentExpired: "expired", AlertConsentVoid: "void"}[st.alert]
		msg := fmt.Sprintf("county %s's unit %s for %s: request %s", c.From, c.Unit, c.Incident, what)
		if c.Reason != "" {
			msg += ": " + c.Reason
		}
		al := &Alert{Kind: st.alert, Incident: c.Incident, Unit: c.Unit, Consent: c.ID, Message: msg, At: s.now().UTC()}
		if inc.Status == IncidentOpen {
			al.Next = s.nextFor(ctx, inc)
		}
		s.alert(al, inc)
	}
}

// nextFor is the best candidate for inc, leaving out the units whose
// county declined a request for this call or let it expire.
func (s *Service) nextFor(ctx context.Context, inc *Incident) *Recommendation {
	refused := s.consentRefused(ctx, inc.ID)
	recs := s.rank(ctx, inc)
	for i := range recs.Candidates {
		if refused[recs.Candidates[i].Unit] == "" {
			return &recs.Candidates[i]
		}
	}
	return nil
}

// consentRefused returns the units whose county declined a request for
// incident or let it expire, with why: they are not offered it again.
func (s *Service) consentRefused(ctx context.Context, incident string) map[string]string {
	if s.consents == nil {
		return nil
	}
	cs, err := s.consents.Consents(ctx, ConsentFilter{Incident: incident})
	if err != nil {
		s.log.Warn("consents of the call", "incident", incident, "err", err)
		return nil
	}
	out := map[string]string{}
	for _, c := range cs {
		if c.Status == ConsentDeclined || c.Status == ConsentExpired {
			out[c.Unit] = fmt.Sprintf("county %s: request %s at %s", c.From, c.Status, c.DecidedAt.UTC().Format("15:04:05"))
		}
	}
	return out
}

// Consent returns one consent by may see: its call's county or its
// unit's county lies in by's scope.
func (s *Service) Consent(ctx context.Context, by Principal, id string) (*Consent, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	if s.consents == nil {
		return nil, errNoConsents
	}
	c, err := s.consents.Consent(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.party(by, c) {
		return nil, Errorf(CodeForbidden, "consent %s is between other counties", id)
	}
	return c, nil
}

// Consents lists the consents by may see, newest first: those its
// counties asked for and those asked of them (the pending ones among the
// latter await its answer).
func (s *Service) Consents(ctx context.Context, by Principal, f ConsentFilter) ([]*Consent, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, Errorf(CodeInvalid, "status %q: want one of %v", f.Status, consentStatuses)
	}
	if s.consents == nil {
		return nil, errNoConsents
	}
	// What by may see is filtered here, so the limit is applied after,
	// unless by sees everything.
	q := ConsentFilter{Status: f.Status, Incident: f.Incident}
	if by.Role == RoleAdmin && by.Jurisdiction == "" {
		q.Limit = f.Limit
	}
	list, err := s.consents.Consents(ctx, q)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(list, func(c *Consent) bool { return !s.party(by, c) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// party reports whether by may see c.
func (s *Service) party(by Principal, c *Consent) bool {
	return by.Sees(s.area, c.From) || by.Sees(s.area, c.To)
}

// ExpireConsents ends every pending request whose time is up, as the
// expiry duty does: each is a compare-and-set, so an answer that wins the
// race stands. It returns how many it ended.
func (s *Service) ExpireConsents(ctx context.Context) (int, error) {
	n, _, err := s.expireDue(ctx)
	return n, err
}

// expireDue ends the pending requests due now and returns how many, and
// when the next pending one is due (zero when none is).
func (s *Service) expireDue(ctx context.Context) (int, time.Time, error) {
	if s.consents == nil {
		return 0, time.Time{}, nil
	}
	pending, err := s.consents.Consents(ctx, ConsentFilter{Status: ConsentPending})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("expire consents: %w", err)
	}
	now := s.now().UTC()
	var (
		n    int
		next time.Time
	)
	for _, p := range pending {
		if now.Before(p.ExpiresAt) {
			if next.IsZero() || p.ExpiresAt.Before(next) {
				next = p.ExpiresAt
			}
			continue
		}
		var steps []consentStep
		s.decide.Lock()
		_, err := s.decideAndCommit(ctx, func() (decision, error) {
			steps = nil
			cur, err := s.consents.Consent(ctx, p.ID)
			if err != nil {
				return decision{}, err
			}
			if cur.Status != ConsentPending || now.Before(cur.ExpiresAt) {
				return decision{}, errAsked // answered meanwhile
			}
			c := s.expired(cur, now)
			steps = []consentStep{{c, stepExpired, AlertConsentExpired}}
			return decision{change: Change{Consents: []*Consent{c}}}, nil
		})
		s.decide.Unlock()
		switch {
		case errors.Is(err, errAsked):
			continue
		case err != nil:
			return n, next, fmt.Errorf("expire consent %s: %w", p.ID, err)
		}
		s.consentSteps(ctx, System.Name, steps)
		n++
	}
	return n, next, nil
}

// ConsentExpiry is the duty that ends consent requests nobody answered in
// time. It sleeps until the next one is due, or until a new one is asked
// on this server, and at most consentPoll (requests asked on another
// server); expiry times are stored, so after a restart the overdue ones
// end at once. Several servers may run it: each expiry is a
// compare-and-set.
type ConsentExpiry struct{ s *Service }

// ConsentExpiry returns the expiry duty of s's consent requests.
func (s *Service) ConsentExpiry() *ConsentExpiry { return &ConsentExpiry{s: s} }

// Run ends consent requests as they expire until ctx ends.
// A record that does not answer is logged once, and again when it
// answers.
func (e *ConsentExpiry) Run(ctx context.Context) error {
	failing := false
	for {
		_, next, err := e.s.expireDue(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			e.s.log.Error("consent expiry: retrying every second", "err", err)
			failing = true
		case err == nil && failing:
			e.s.log.Info("consent expiry: the record answers again")
			failing = false
		}
		wait := consentPoll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(e.s.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-e.s.consentAsked:
			t.Stop()
		case <-t.C:
		}
	}
}

// asked wakes the expiry duty for a new request.
func (s *Service) asked() {
	select {
	case s.consentAsked <- struct{}{}:
	default:
	}
}

// ConsentPolicies returns every jurisdiction of the area with the consent
// policy that applies to its units.
func (s *Service) ConsentPolicies(ctx context.Context, by Principal) ([]JurisdictionPolicy, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	recs, err := s.policyRecords(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]JurisdictionPolicy, 0, len(s.area.Jurisdictions))
	for _, j := range s.area.Jurisdictions {
		out = append(out, s.policyOf(j, recs))
	}
	return out, nil
}

// SetConsentPolicy sets how county jur answers requests for its units, on
// behalf of by: a dispatcher or administrator of that county, or a user
// whose scope covers it (a city user). It is audited and kept in the
// record, where it overrides the area file.
func (s *Service) SetConsentPolicy(ctx context.Context, by Principal, jur string, p ConsentPolicy) (JurisdictionPolicy, error) {
	if err := s.allowed(by); err != nil {
		return JurisdictionPolicy{}, err
	}
	if by.Role == RoleIntegrator {
		return JurisdictionPolicy{}, Errorf(CodeForbidden, "an integrator may not set a consent policy")
	}
	j, ok := s.area.Jurisdiction(jur)
	if !ok {
		return JurisdictionPolicy{}, Errorf(CodeNotFound, "jurisdiction %q is not in the area", jur)
	}
	if !by.Sees(s.area, jur) {
		s.audit.append(ctx, by.Name, AuditACLDenied, jur, map[string]string{"action": "consent_policy", "why": "outside the user's jurisdiction"})
		return JurisdictionPolicy{}, Errorf(CodeForbidden, "jurisdiction %s is outside yours", jur)
	}
	if !p.Valid() {
		return JurisdictionPolicy{}, Errorf(CodeInvalid, "consent %q: want auto or ask", p)
	}
	if s.consents == nil {
		return JurisdictionPolicy{}, errNoConsents
	}
	recs, err := s.policyRecords(ctx)
	if err != nil {
		return JurisdictionPolicy{}, err
	}
	before := s.policyOf(j, recs).Consent
	rec := PolicyRecord{Jurisdiction: jur, Consent: p, By: by.Name, At: s.now().UTC()}
	if err := s.consents.SetConsentPolicy(ctx, rec); err != nil {
		return JurisdictionPolicy{}, fmt.Errorf("set consent policy of %s: %w", jur, err)
	}
	s.audit.append(ctx, by.Name, AuditConsentPolicy, jur, map[string]any{"consent": p, "before": before})
	return s.policyOf(j, map[string]PolicyRecord{jur: rec}), nil
}

// policyRecords returns the policies set over the API, by jurisdiction.
func (s *Service) policyRecords(ctx context.Context) (map[string]PolicyRecord, error) {
	if s.consents == nil {
		return nil, nil
	}
	list, err := s.consents.ConsentPolicies(ctx)
	if err != nil {
		return nil, fmt.Errorf("consent policies: %w", err)
	}
	out := make(map[string]PolicyRecord, len(list))
	for _, r := range list {
		out[r.Jurisdiction] = r
	}
	return out, nil
}

// policyOf is the policy of j: the record's, else the area file's, else ask.
func (s *Service) policyOf(j Jurisdiction, recs map[string]PolicyRecord) JurisdictionPolicy {
	out := JurisdictionPolicy{ID: j.ID, Name: j.Name, Parent: j.Parent, Consent: ConsentAsk, Source: "default"}
	if r, ok := recs[j.ID]; ok {
		out.Consent, out.Source, out.SetBy, out.SetAt = r.Consent, "record", r.By, r.At
	} else if j.Consent != "" {
		out.Consent, out.Source = j.Consent, "area"
	}
	return out
}

// autoAccepts reports whether the county jur accepts requests for its
// units at once.
func (s *Service) autoAccepts(ctx context.Context, jur string) (bool, error) {
	j, ok := s.area.Jurisdiction(jur)
	if !ok {
		return false, nil
	}
	recs, err := s.policyRecords(ctx)
	if err != nil {
		return false, err
	}
	return s.policyOf(j, recs).Consent == ConsentAuto, nil
}

// sameCity reports whether a unit of jurisdiction jur lies beneath the
// city of by's county: only there can by ask for it.
func (s *Service) sameCity(by Principal, jur string) bool {
	j, ok := s.area.Jurisdiction(by.Jurisdiction)
	return ok && j.Parent != "" && s.area.Within(jur, j.Parent)
}

// pendingConsents returns the pending requests, oldest first; none when
// the record keeps no consents.
func (s *Service) pendingConsents(ctx context.Context) ([]*Consent, error) {
	if s.consents == nil {
		return nil, nil
	}
	list, err := s.consents.Consents(ctx, ConsentFilter{Status: ConsentPending})
	if err != nil {
		return nil, fmt.Errorf("pending consents: %w", err)
	}
	slices.SortFunc(list, func(a, b *Consent) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	return list, nil
}
