package dispatch

import (
	"sync"
	"time"
)

// EventType names what changed in the picture.
type EventType string

// Event types (they are the websocket message types of contract v1).
const (
	EventUnit       EventType = "unit"
	EventIncident   EventType = "incident"
	EventAssignment EventType = "assignment"
	EventKPI        EventType = "kpi"
	EventAlert      EventType = "alert"
	EventConsent    EventType = "consent"
	// EventSessions says that sessions ended. It is internal: the live
	// feed closes the matching consoles and never sends it on.
	EventSessions EventType = "sessions"

	// EventPrearrival: a unit started transporting a patient; the
	// receiving hospital is told what comes and when.
	EventPrearrival EventType = "prearrival"
)

// Event is one change of the live picture: a unit moved or changed status,
// an incident changed, an assignment was made or changed. It can be fanned
// out in process (Bus) or, later, through Redis.
type Event struct {
	Type       EventType   `json:"type"`
	Unit       *UnitState  `json:"unit,omitempty"`
	Incident   *Incident   `json:"incident,omitempty"`
	Assignment *Assignment `json:"assignment,omitempty"`
	Alert      *Alert      `json:"alert,omitempty"`
	Prearrival *Prearrival `json:"prearrival,omitempty"`
	Consent    *Consent    `json:"consent,omitempty"`
	KPI        *KPIs       `json:"kpi,omitempty"`
	// Jurisdiction scopes the event for county consoles.
	Jurisdiction string `json:"-"`
	// Also are further jurisdictions the event concerns: a consent
	// concerns the county that asks and the county that owns the unit.
	Also []string `json:"-"`
	// Sessions names the sessions an EventSessions ended. Like
	// Jurisdiction and Also it is never sent to a console; a bus that
	// carries events between servers must carry all three.
	Sessions *SessionsEnded `json:"-"`
}

// SessionsEnded names ended sessions: the one of TokenHash (a sign-out),
// or every session of Username when TokenHash is empty.
type SessionsEnded struct {
	Username  string
	TokenHash string
}

// Ends reports whether the session tokenHash of username is among those
// that ended.
func (s *SessionsEnded) Ends(username, tokenHash string) bool {
	return s != nil && s.Username == username && (s.TokenHash == "" || s.TokenHash == tokenHash)
}

// In reports whether e is for a console of scope ("" is the whole area):
// one of its jurisdictions lies within scope. An event without a
// jurisdiction is for consoles of the whole area only (deny by default).
func (e Event) In(a *Area, scope string) bool {
	if scope == "" {
		return true
	}
	if e.Jurisdiction != "" && a.Within(e.Jurisdiction, scope) {
		return true
	}
	for _, j := range e.Also {
		if j != "" && a.Within(j, scope) {
			return true
		}
	}
	return false
}

// AlertKind names what a dispatcher must act on.
type AlertKind string

// Alert kinds.
const (
	// AlertDeclined: a crew declined an offered call.
	AlertDeclined AlertKind = "declined"
	// AlertAborted: a unit could not go on with a call (out of service,
	// or cleared before reaching the patient); the call is back in the
	// queue.
	AlertAborted AlertKind = "aborted"
	// AlertAckTimeout: a terminal did not acknowledge an assignment in
	// time; per policy the next candidate is named or already assigned.
	AlertAckTimeout AlertKind = "ack_timeout"
	// AlertInferred: telemetry suggests a unit's status (stopped at the
	// scene, at a hospital); Status is the suggestion for the dispatcher
	// to confirm, or the status the engine applied.
	AlertInferred AlertKind = "inferred"
	// AlertConsentDeclined: the owning county declined a request for its
	// unit.
	AlertConsentDeclined AlertKind = "consent_declined"
	// AlertConsentExpired: nobody answered a request for a unit in time.
	AlertConsentExpired AlertKind = "consent_expired"
	// AlertConsentVoid: a requested unit was sent elsewhere or is no
	// longer available.
	AlertConsentVoid AlertKind = "consent_void"
)

// Alert is something a dispatcher must act on now, with the next
// candidate unit for the call when there is one.
type Alert struct {
	Kind       AlertKind       `json:"kind"`
	Incident   string          `json:"incident,omitempty"`
	Unit       string          `json:"unit,omitempty"`
	Assignment string          `json:"assignment,omitempty"`
	Consent    string          `json:"consent,omitempty"`
	Message    string          `json:"message"`
	At         time.Time       `json:"at"`
	Next       *Recommendation `json:"next,omitempty"`

	// Status is the status an inferred alert suggests, or applied.
	Status UnitStatus `json:"status,omitempty"`
}

// Publisher takes events for fan-out.
type Publisher interface {
	Publish(e Event)
}

// Bus fans events out to subscribers in process. Publish never blocks: a
// subscriber whose buffer is full is dropped (its channel is closed), so
// one slow console can never hold up the others or the ingest path.
type Bus struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

var _ Publisher = (*Bus)(nil)

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Subscription receives events on C until it is closed or dropped.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	bus     *Bus
	dropped bool
}

// Subscribe returns a subscription with a buffer of n events.
func (b *Bus) Subscribe(n int) *Subscription {
	c := make(chan Event, n)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish hands e to every subscriber without blocking.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped = true
			delete(b.subs, s)
			close(s.c)
		}
	}
}

// Dropped reports whether the bus dropped s for being too slow. It is
// meaningful once C has been closed.
func (s *Subscription) Dropped() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.dropped
}

// Close ends the subscription; C is closed. Calling it twice is safe.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.c)
	}
}
