package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// The linked area: a city with three counties side by side, A (the
// county that asks), B east of it and C west of it, and a county of
// another city. A's only free unit U02 is at its far west edge, 32 km
// from calls at A's east edge; B's unit N01 is 10 km away, over the line;
// C's unit C01 has never reported a position.
const (
	countyC    = "510303"
	otherCity  = "510400"
	otherCount = "510402"
)

var (
	eastEdge = orb.Point{105.15, 29.2} // where A's calls come from
	westEdge = orb.Point{104.82, 29.2} // where A's own unit waits
	overLine = orb.Point{105.25, 29.2} // B's unit, just over the line
	bCentre  = orb.Point{105.3, 29.2}  // a call in B
	dispC    = dispatch.Principal{Name: "disp-c", Role: dispatch.RoleDispatcher, Jurisdiction: countyC}
)

func linkedArea(tb testing.TB, consentB dispatch.ConsentPolicy) *dispatch.Area {
	tb.Helper()
	sq := func(id string, c orb.Point, half float64) *dispatch.Jurisdiction {
		return &dispatch.Jurisdiction{ID: id, Name: id, Parent: cityID, Region: dispatchtest.Region(tb, id, dispatchtest.Square(c, half))}
	}
	b := sq(neighbourID, bCentre, 0.1)
	b.Consent = consentB
	other := sq(otherCount, orb.Point{106.0, 29.2}, 0.1)
	other.Parent = otherCity
	a := &dispatch.Area{
		Name: "linked",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: cityID, Name: "city"}, *sq(countyID, centre, 0.2), *b, *sq(countyC, orb.Point{104.6, 29.2}, 0.2),
			{ID: otherCity, Name: "other city"}, *other,
		},
		Stations: []dispatch.Station{
			{ID: "SA", Name: "A", Jurisdiction: countyID, Location: westEdge},
			{ID: "SB", Name: "B", Jurisdiction: neighbourID, Location: overLine},
		},
		Units: []dispatch.Unit{
			{ID: "U01", Callsign: "A1", Station: "SA", Jurisdiction: countyID, Capabilities: []string{dispatch.ALS}},
			{ID: "U02", Callsign: "A2", Station: "SA", Jurisdiction: countyID, Capabilities: []string{dispatch.BLS}},
			{ID: "N01", Callsign: "B1", Station: "SB", Jurisdiction: neighbourID, Capabilities: []string{dispatch.ALS}},
			{ID: "C01", Callsign: "C1", Jurisdiction: countyC},
			{ID: "X01", Callsign: "X1", Jurisdiction: otherCount},
		},
	}
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	return a
}

// linked is a service on the linked area whose county A has a call at
// its east edge and its unit U01 out on another call.
type linked struct {
	*fixture
	store  *memory.Store
	audit  *memory.Audit
	events *dispatch.Subscription
	inc    *dispatch.Incident
}

func newLinked(tb testing.TB, consentB dispatch.ConsentPolicy, cfg func(*dispatch.Config)) *linked {
	tb.Helper()
	ctx := context.Background()
	l := &linked{store: memory.NewStore(), audit: memory.NewAudit()}
	l.fixture = &fixture{clock: dispatchtest.NewClock(clock0), bus: dispatch.NewBus(), cmds: &recorder{}, area: linkedArea(tb, consentB), seq: map[string]uint64{}}
	c := dispatch.Config{Area: l.area, Store: l.store, Tracks: memory.NewTracks(100), Events: l.bus, Commands: l.cmds, Auditor: l.audit, Now: l.clock.Now, Logger: quiet}
	if cfg != nil {
		cfg(&c)
	}
	svc, err := dispatch.NewService(ctx, c)
	if err != nil {
		tb.Fatal(err)
	}
	l.svc = svc
	l.move(tb, "U01", eastEdge)
	l.move(tb, "U02", westEdge)
	l.move(tb, "N01", overLine)
	l.move(tb, "X01", orb.Point{106.0, 29.2})
	busy, _ := l.call(tb, eastEdge)
	if _, err := svc.Assign(ctx, dispA, busy.ID, "U01"); err != nil {
		tb.Fatal(err)
	}
	l.inc, _ = l.call(tb, eastEdge)
	l.events = l.bus.Subscribe(4096)
	tb.Cleanup(l.events.Close)
	return l
}

// drain returns the events of type typ published since the last drain.
func (l *linked) drain(typ dispatch.EventType) []dispatch.Event {
	var out []dispatch.Event
	for {
		select {
		case e := <-l.events.C:
			if e.Type == typ {
				out = append(out, e)
			}
		default:
			return out
		}
	}
}

// ask requests N01 for the call on behalf of disp-a and wants a pending consent.
func (l *linked) ask(tb testing.TB) *dispatch.Consent {
	tb.Helper()
	a, c, err := l.svc.Request(context.Background(), dispA, l.inc.ID, "N01")
	if err != nil || a != nil || c == nil || c.Status != dispatch.ConsentPending {
		tb.Fatalf("Request = %+v, %+v, %v; want a pending consent and no assignment", a, c, err)
	}
	return c
}

// auditSteps returns the consent steps in the audit log, in order.
func (l *linked) auditSteps(tb testing.TB) []string {
	tb.Helper()
	log, err := l.audit.AuditLog(context.Background(), 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range log {
		switch e.Action {
		case dispatch.AuditConsent:
			var d struct{ Step string }
			_ = json.Unmarshal(e.Detail, &d)
			out = append(out, e.Actor+" consent:"+d.Step)
		case dispatch.AuditAssign:
			out = append(out, e.Actor+" assign")
		}
	}
	if err := dispatch.VerifyAudit(log); err != nil {
		tb.Fatal(err)
	}
	return out
}

// wantAlert checks the one alert published since the last drain.
func (l *linked) wantAlert(tb testing.TB, kind dispatch.AlertKind, next string) dispatch.Alert {
	tb.Helper()
	es := l.drain(dispatch.EventAlert)
	if len(es) != 1 {
		tb.Fatalf("%d alerts, want one %s", len(es), kind)
	}
	al := *es[0].Alert
	if al.Kind != kind || al.Incident != l.inc.ID || al.Unit != "N01" || es[0].Jurisdiction != countyID {
		tb.Fatalf("alert %+v to %s, want %s for N01 on %s to county A", al, es[0].Jurisdiction, kind, l.inc.ID)
	}
	if (al.Next == nil) != (next == "") || (al.Next != nil && al.Next.Unit != next) {
		tb.Fatalf("alert offers %+v next, want %q", al.Next, next)
	}
	return al
}

// TestConsentAccepted: A's dispatcher asks for B's unit; B's dispatcher
// sees the request and accepts it: the assignment is made in the same
// step, the unit gets its assign command, both counties' consoles hear of
// each step, and the audit log and the call's consents record them.
func TestConsentAccepted(t *testing.T) {
	ctx := context.Background()
	l := newLinked(t, "", nil)
	c := l.ask(t)
	if c.From != neighbourID || c.To != countyID || c.Unit != "N01" || c.Incident != l.inc.ID || c.RequestedBy != "disp-a" ||
		!c.ExpiresAt.Equal(clock0.Add(dispatch.DefaultConsentTimeout)) || c.Priority != l.inc.Priority || c.Location != l.inc.Location {
		t.Fatalf("consent %+v", c)
	}
	if st := l.status(t, "N01"); st.Status != dispatch.Available || len(l.commands("N01")) != 0 {
		t.Fatalf("N01 %s with %d commands before consent", st.Status, len(l.commands("N01")))
	}
	es := l.drain(dispatch.EventConsent)
	if len(es) != 1 || es[0].Consent.ID != c.ID || !es[0].In(l.area, countyID) || !es[0].In(l.area, neighbourID) || es[0].In(l.area, countyC) {
		t.Fatalf("consent events %+v, want one for counties A and B only", es)
	}
	// What awaits B, and what A asked.
	for _, by := range []dispatch.Principal{dispB, dispA, cityP} {
		got, err := l.svc.Consents(ctx, by, dispatch.ConsentFilter{Status: dispatch.ConsentPending})
		if err != nil || len(got) != 1 || got[0].ID != c.ID {
			t.Fatalf("%s: pending %+v, %v", by.Name, got, err)
		}
	}
	if got, err := l.svc.Consents(ctx, dispC, dispatch.ConsentFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("county C sees %+v, %v", got, err)
	}
	// Asking again gives the same request.
	if _, again, err := l.svc.Request(ctx, dispA, l.inc.ID, "N01"); err != nil || again.ID != c.ID {
		t.Fatalf("asking again: %+v, %v; want %s", again, err, c.ID)
	}
	for _, by := range []dispatch.Principal{dispA, dispC, integA} {
		if _, _, err := l.svc.AnswerConsent(ctx, by, c.ID, dispatch.Accept, ""); dispatch.ErrorCode(err) != dispatch.CodeForbidden {
			t.Fatalf("%s answered: %v", by.Name, err)
		}
	}

	l.clock.Add(20 * time.Second)
	got, a, err := l.svc.AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, "go ahead")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dispatch.ConsentAccepted || got.DecidedBy != "disp-b" || got.Assignment != a.ID || got.Reason != "go ahead" || got.Version != 2 {
		t.Fatalf("accepted consent %+v", got)
	}
	if a.Unit != "N01" || a.Incident != l.inc.ID || a.By != "disp-a" || a.Status != dispatch.AssignOffered {
		t.Fatalf("assignment %+v", a)
	}
	if st := l.status(t, "N01"); st.Status != dispatch.Dispatched || st.Assignment != a.ID {
		t.Fatalf("N01 %s on %q, want dispatched on %s", st.Status, st.Assignment, a.ID)
	}
	if inc := l.incident(t, l.inc.ID); inc.Status != dispatch.IncidentAssigned {
		t.Fatalf("incident %s, want assigned", inc.Status)
	}
	if cmds := l.commands("N01"); len(cmds) != 1 || cmds[0].Type != telemetry.CommandAssign || cmds[0].Assignment != a.ID {
		t.Fatalf("N01 commands %+v, want one assign", cmds)
	}
	if es := l.drain(dispatch.EventConsent); len(es) != 1 || es[0].Consent.Status != dispatch.ConsentAccepted || es[0].Jurisdiction != countyID || !slices.Equal(es[0].Also, []string{neighbourID}) {
		t.Fatalf("consent events %+v", es)
	}
	if _, _, err := l.svc.AnswerConsent(ctx, cityP, c.ID, dispatch.Decline, ""); dispatch.ErrorCode(err) != dispatch.CodeConflict {
		t.Fatalf("a second answer: %v, want conflict", err)
	}
	if got, want := l.auditSteps(t), []string{"disp-a assign", "disp-a consent:requested", "disp-b consent:accepted", "disp-a assign"}; !slices.Equal(got, want) {
		t.Fatalf("audit %q, want %q", got, want)
	}
	log, _ := l.audit.AuditLog(ctx, 0, 0)
	var denied []string
	for _, e := range log {
		if e.Action == dispatch.AuditACLDenied && e.Subject == c.ID {
			denied = append(denied, e.Actor)
		}
	}
	if !slices.Equal(denied, []string{"disp-a", "disp-c"}) {
		t.Fatalf("refused answers audited for %q, want disp-a and disp-c", denied)
	}
	timeline, err := l.svc.Consents(ctx, dispA, dispatch.ConsentFilter{Incident: l.inc.ID})
	if err != nil || len(timeline) != 1 || timeline[0].Status != dispatch.ConsentAccepted {
		t.Fatalf("the call's consents %+v, %v", timeline, err)
	}
}

// TestConsentDeclined: B declines; A is told with an alert that offers
// the next candidate (not N01 again), and nothing is sent.
func TestConsentDeclined(t *testing.T) {
	ctx := context.Background()
	l := newLinked(t, "", nil)
	c := l.ask(t)
	l.drain(dispatch.EventAlert)
	got, a, err := l.svc.AnswerConsent(ctx, cityP, c.ID, dispatch.Decline, "needed here")
	if err != nil || a != nil || got.Status != dispatch.ConsentDeclined || got.DecidedBy != "city" || got.Reason != "needed here" {
		t.Fatalf("decline: %+v %+v %v", got, a, err)
	}
	al := l.wantAlert(t, dispatch.AlertConsentDeclined, "U02")
	if al.Consent != c.ID || !strings.Contains(al.Message, "needed here") {
		t.Fatalf("alert %+v", al)
	}
	if st := l.status(t, "N01"); st.Status != dispatch.Available || len(l.commands("N01")) != 0 {
		t.Fatalf("N01 %s after a decline", st.Status)
	}
	if inc := l.incident(t, l.inc.ID); inc.Status != dispatch.IncidentOpen {
		t.Fatalf("incident %s, want open", inc.Status)
	}
	if _, _, err := l.svc.AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, ""); dispatch.ErrorCode(err) != dispatch.CodeConflict {
		t.Fatalf("accept after decline: %v, want conflict", err)
	}
	if got, want := l.auditSteps(t), []string{"disp-a assign", "disp-a consent:requested", "city consent:declined"}; !slices.Equal(got, want) {
		t.Fatalf("audit %q, want %q", got, want)
	}
}

// TestConsentExpires: nobody answers in time; the expiry ends the
// request and A is offered the next candidate; a late accept is refused.
func TestConsentExpires(t *testing.T) {
	ctx := context.Background()
	l := newLinked(t, "", func(c *dispatch.Config) { c.ConsentTimeout = 30 * time.Second })
	c := l.ask(t)
	l.clock.Add(29 * time.Second)
	if n, err := l.svc.ExpireConsents(ctx); err != nil || n != 0 {
		t.Fatalf("expired %d before time (%v)", n, err)
	}
	l.clock.Add(time.Second)
	if n, err := l.svc.ExpireConsents(ctx); err != nil || n != 1 {
		t.Fatalf("expired %d, want 1 (%v)", n, err)
	}
	l.wantAlert(t, dispatch.AlertConsentExpired, "U02")
	got, _ := l.svc.Consent(ctx, dispA, c.ID)
	if got.Status != dispatch.ConsentExpired || got.DecidedBy != "system" || !got.DecidedAt.Equal(clock0.Add(30*time.Second)) {
		t.Fatalf("consent %+v", got)
	}
	if _, _, err := l.svc.AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, ""); dispatch.ErrorCode(err) != dispatch.CodeConflict {
		t.Fatalf("a late accept: %v, want conflict", err)
	}
	if st := l.status(t, "N01"); st.Status != dispatch.Available {
		t.Fatalf("N01 %s after the expiry", st.Status)
	}

	// An answer that comes after the time, before the duty ran, expires it.
	m := newLinked(t, "", nil)
	c = m.ask(t)
	m.clock.Add(dispatch.DefaultConsentTimeout)
	if _, _, err := m.svc.AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, ""); dispatch.ErrorCode(err) != dispatch.CodeConflict || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("accept at the expiry: %v, want conflict: expired", err)
	}
	if got, _ := m.svc.Consent(ctx, dispA, c.ID); got.Status != dispatch.ConsentExpired {
		t.Fatalf("consent %s, want expired", got.Status)
	}
	if st := m.status(t, "N01"); st.Status != dispatch.Available {
		t.Fatalf("N01 %s after a refused accept", st.Status)
	}
	m.wantAlert(t, dispatch.AlertConsentExpired, "U02")
}

// TestConsentExpiryDuty: the duty ends requests as they fall due, wakes
// for a new one, ends overdue ones at once after a restart, and stops
// with its context.
func TestConsentExpiryDuty(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l := newLinked(t, "", nil)
	c := l.ask(t)
	// A restart: a new service on the same record, with the clock past
	// the request's time.
	l.clock.Add(2 * dispatch.DefaultConsentTimeout)
	svc, err := dispatch.NewService(ctx, dispatch.Config{Area: l.area, Store: l.store, Events: l.bus, Auditor: l.audit, Now: l.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.ConsentExpiry().Run(ctx) }()
	waitUntil(t, "the overdue request expired", func() bool {
		got, _ := svc.Consent(context.Background(), dispA, c.ID)
		return got.Status == dispatch.ConsentExpired
	})
	// A new request on the running service expires once its time is up.
	_, c2, err := svc.Request(context.Background(), dispA, l.inc.ID, "N01")
	if err != nil || c2.Status != dispatch.ConsentPending {
		t.Fatalf("ask again: %+v %v", c2, err)
	}
	l.clock.Add(dispatch.DefaultConsentTimeout)
	waitUntil(t, "the new request expired", func() bool {
		got, _ := svc.Consent(context.Background(), dispA, c2.ID)
		return got.Status == dispatch.ConsentExpired
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func waitUntil(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConsentVoid: a request stops when the unit goes elsewhere or the
// call ends, and an accept then sends nothing.
func TestConsentVoid(t *testing.T) {
	ctx := context.Background()
	t.Run("owner sends the unit", func(t *testing.T) {
		l := newLinked(t, "", nil)
		c := l.ask(t)
		own, _ := l.call(t, bCentre)
		if _, err := l.svc.Assign(ctx, dispB, own.ID, "N01"); err != nil {
			t.Fatal(err)
		}
		got, _ := l.svc.Consent(ctx, dispA, c.ID)
		if got.Status != dispatch.ConsentVoid || !strings.Contains(got.Reason, own.ID) {
			t.Fatalf("consent %+v, want void naming %s", got, own.ID)
		}
		l.wantAlert(t, dispatch.AlertConsentVoid, "U02")
		if _, _, err := l.svc.AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, ""); dispatch.ErrorCode(err) != dispatch.CodeConflict {
			t.Fatalf("accept of a void request: %v", err)
		}
	})
	t.Run("unit no longer available", func(t *testing.T) {
		l := newLinked(t, "", nil)
		c := l.ask(t)
		l.clock.Add(time.Second)
		if err := l.svc.Status(ctx, telemetry.Status{Unit: "N01", Time: l.clock.Now(), Status: "out_of_service"}); err != nil {
			t.Fatal(err)
		}
		_, a, err := l.svc.AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, "")
		if dispatch.ErrorCode(err) != dispatch.CodeConflict || a != nil || !strings.Contains(err.Error(), "out_of_service") {
			t.Fatalf("accept of an unavailable unit: %+v %v, want conflict", a, err)
		}
		got, _ := l.svc.Consent(ctx, dispA, c.ID)
		if got.Status != dispatch.ConsentVoid {
			t.Fatalf("consent %s, want void", got.Status)
		}
		l.wantAlert(t, dispatch.AlertConsentVoid, "U02")
		if as, _ := l.svc.Assignments(ctx, dispA, l.inc.ID); len(as) != 0 || len(l.commands("N01")) != 0 {
			t.Fatalf("assignments %+v, commands %d after a void accept", as, len(l.commands("N01")))
		}
	})
	t.Run("call cancelled", func(t *testing.T) {
		l := newLinked(t, "", nil)
		c := l.ask(t)
		if _, err := l.svc.EndIncident(ctx, dispA, l.inc.ID, dispatch.IncidentCancelled, "false alarm"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.svc.AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, ""); dispatch.ErrorCode(err) != dispatch.CodeConflict {
			t.Fatalf("accept for a cancelled call: %v", err)
		}
		if st := l.status(t, "N01"); st.Status != dispatch.Available {
			t.Fatalf("N01 %s: sent to a cancelled call", st.Status)
		}
	})
	t.Run("call gets its own unit", func(t *testing.T) {
		l := newLinked(t, "", nil)
		c := l.ask(t)
		if _, err := l.svc.Assign(ctx, dispA, l.inc.ID, "U02"); err != nil {
			t.Fatal(err)
		}
		got, _ := l.svc.Consent(ctx, dispA, c.ID)
		if got.Status != dispatch.ConsentVoid {
			t.Fatalf("consent %s, want void: the call has its unit", got.Status)
		}
		if es := l.drain(dispatch.EventAlert); len(es) != 0 {
			t.Fatalf("alerts %+v: the requester settled it", es)
		}
	})
}

// TestConsentOnePerUnit: a unit is asked for one call at a time; a new
// request for the same call withdraws the one pending.
func TestConsentOnePerUnit(t *testing.T) {
	ctx := context.Background()
	l := newLinked(t, "", nil)
	other, _ := l.call(t, eastEdge)
	c := l.ask(t)
	if _, _, err := l.svc.Request(ctx, dispA, other.ID, "N01"); dispatch.ErrorCode(err) != dispatch.CodeConflict {
		t.Fatalf("a second call asking for N01: %v, want conflict", err)
	}
	_, c2, err := l.svc.Request(ctx, dispA, other.ID, "U02")
	if err != nil || c2 != nil {
		t.Fatalf("own unit: %+v %v", c2, err)
	}
	if _, _, err := l.svc.Request(ctx, dispA, l.inc.ID, "X01"); dispatch.ErrorCode(err) != dispatch.CodeForbidden {
		t.Fatalf("a unit of another city: %v, want forbidden", err)
	}
	got, _ := l.svc.Consent(ctx, dispA, c.ID)
	if got.Status != dispatch.ConsentPending {
		t.Fatalf("a refused request changed the pending one: %s", got.Status)
	}
	// Asking C for its unit for the same call withdraws the request to B.
	_, c3, err := l.svc.Request(ctx, dispA, l.inc.ID, "C01")
	if err != nil || c3.Status != dispatch.ConsentPending || c3.From != countyC {
		t.Fatalf("ask C: %+v %v", c3, err)
	}
	got, _ = l.svc.Consent(ctx, dispA, c.ID)
	if got.Status != dispatch.ConsentVoid || !strings.Contains(got.Reason, "withdrawn") {
		t.Fatalf("the request to B: %+v, want void, withdrawn", got)
	}
	if got, _ := l.svc.Consents(ctx, dispB, dispatch.ConsentFilter{Status: dispatch.ConsentPending}); len(got) != 0 {
		t.Fatalf("B still has %+v pending", got)
	}
}

// TestBorrowWithoutConsent: a city user sends B's unit to A's call at
// once; B is told with a consent record of status notified.
func TestBorrowWithoutConsent(t *testing.T) {
	ctx := context.Background()
	l := newLinked(t, "", nil)
	a, c, err := l.svc.Request(ctx, cityP, l.inc.ID, "N01")
	if err != nil || a == nil || c == nil {
		t.Fatalf("Request = %+v, %+v, %v", a, c, err)
	}
	if c.Status != dispatch.ConsentNotified || c.Assignment != a.ID || c.From != neighbourID || c.To != countyID || c.DecidedBy != "city" || !c.ExpiresAt.IsZero() {
		t.Fatalf("consent %+v", c)
	}
	if cmds := l.commands("N01"); len(cmds) != 1 || cmds[0].Type != telemetry.CommandAssign {
		t.Fatalf("N01 commands %+v", cmds)
	}
	if es := l.drain(dispatch.EventConsent); len(es) != 1 || !es[0].In(l.area, neighbourID) {
		t.Fatalf("consent events %+v, want one to county B", es)
	}
	if got, err := l.svc.Consents(ctx, dispB, dispatch.ConsentFilter{}); err != nil || len(got) != 1 || got[0].Status != dispatch.ConsentNotified {
		t.Fatalf("B's consents %+v %v", got, err)
	}
	if got, want := l.auditSteps(t), []string{"disp-a assign", "city consent:notified", "city assign"}; !slices.Equal(got, want) {
		t.Fatalf("audit %q, want %q", got, want)
	}
	// Assign (not Request) still refuses a county dispatcher.
	if _, err := l.svc.Assign(ctx, dispB, l.inc.ID, "U02"); dispatch.ErrorCode(err) != dispatch.CodeForbidden {
		t.Fatalf("disp-b assigned on A's call: %v", err)
	}
}

// TestConsentPolicy: a county whose policy is auto lends at once; a policy
// set over the API overrides the area file, is audited, and only the
// county's own people (or a city user) may set it.
func TestConsentPolicy(t *testing.T) {
	ctx := context.Background()
	l := newLinked(t, dispatch.ConsentAuto, nil)
	a, c, err := l.svc.Request(ctx, dispA, l.inc.ID, "N01")
	if err != nil || a == nil || c.Status != dispatch.ConsentAccepted || c.DecidedBy != "system" || c.Assignment != a.ID {
		t.Fatalf("auto: %+v %+v %v", a, c, err)
	}
	if cmds := l.commands("N01"); len(cmds) != 1 {
		t.Fatalf("N01 commands %+v", cmds)
	}
	if got, want := l.auditSteps(t), []string{"disp-a assign", "disp-a consent:auto", "disp-a assign"}; !slices.Equal(got, want) {
		t.Fatalf("audit %q, want %q", got, want)
	}

	m := newLinked(t, dispatch.ConsentAuto, nil)
	for _, tt := range []struct {
		by   dispatch.Principal
		jur  string
		p    dispatch.ConsentPolicy
		code string
	}{
		{dispA, neighbourID, dispatch.ConsentAsk, dispatch.CodeForbidden},
		{integA, countyID, dispatch.ConsentAsk, dispatch.CodeForbidden},
		{dispB, neighbourID, "sometimes", dispatch.CodeInvalid},
		{dispB, "999999", dispatch.ConsentAsk, dispatch.CodeNotFound},
		{cityP, countyID, dispatch.ConsentAuto, ""},
		{dispB, neighbourID, dispatch.ConsentAsk, ""},
	} {
		got, err := m.svc.SetConsentPolicy(ctx, tt.by, tt.jur, tt.p)
		if codeOf(err) != tt.code {
			t.Fatalf("%s sets %s to %q: %v, want %q", tt.by.Name, tt.jur, tt.p, err, tt.code)
		}
		if err == nil && (got.Consent != tt.p || got.Source != "record" || got.SetBy != tt.by.Name) {
			t.Fatalf("policy %+v", got)
		}
	}
	ps, err := m.svc.ConsentPolicies(ctx, dispC)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{cityID: "ask default", countyID: "auto record", neighbourID: "ask record", countyC: "ask default"}
	for _, p := range ps {
		if w, ok := want[p.ID]; ok && w != string(p.Consent)+" "+p.Source {
			t.Errorf("%s: %s %s, want %s", p.ID, p.Consent, p.Source, w)
		}
	}
	m.ask(t) // B asks again: the record overrides the area file
	log, _ := m.audit.AuditLog(ctx, 0, 0)
	var set []string
	for _, e := range log {
		if e.Action == dispatch.AuditConsentPolicy {
			set = append(set, e.Actor+" "+e.Subject+" "+string(e.Detail))
		}
	}
	if len(set) != 2 || !strings.Contains(set[1], `"before":"auto"`) || !strings.Contains(set[1], `"consent":"ask"`) {
		t.Fatalf("policy audit %q", set)
	}
}

// meet is a record whose first two reads of a consent wait for each
// other, so that two servers answering it both decide from the same
// version.
type meet struct {
	*memory.Store
	mu    sync.Mutex
	n     int
	ready chan struct{}
}

func (m *meet) Consent(ctx context.Context, id string) (*dispatch.Consent, error) {
	c, err := m.Store.Consent(ctx, id)
	m.mu.Lock()
	m.n++
	n := m.n
	if n == 2 {
		close(m.ready)
	}
	m.mu.Unlock()
	if n <= 2 {
		<-m.ready
	}
	return c, err
}

// TestConsentRace: two servers on one record answer one request at once,
// one accepting and one declining, both from the same version: one answer
// stands, the other is a conflict, and at most one unit is sent.
func TestConsentRace(t *testing.T) {
	ctx := context.Background()
	for round := range 10 {
		l := newLinked(t, "", nil)
		c := l.ask(t)
		rec := &meet{Store: l.store, ready: make(chan struct{})}
		var svcs [2]*dispatch.Service
		for i := range svcs {
			svc, err := dispatch.NewService(ctx, dispatch.Config{Area: l.area, Store: rec, Consents: rec, Events: dispatch.NewBus(), Commands: l.cmds, Now: l.clock.Now, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			svcs[i] = svc
		}
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		wg.Add(2)
		go func() { defer wg.Done(); _, _, errs[0] = svcs[0].AnswerConsent(ctx, dispB, c.ID, dispatch.Accept, "") }()
		go func() { defer wg.Done(); _, _, errs[1] = svcs[1].AnswerConsent(ctx, cityP, c.ID, dispatch.Decline, "") }()
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: errors %v and %v, want exactly one answer to stand", round, errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, dispatch.ErrConflict) {
				t.Fatalf("round %d: %v, want conflict", round, err)
			}
		}
		got, _ := l.store.Consent(ctx, c.ID)
		active, _ := l.store.ActiveAssignments(ctx)
		sent := 0
		for _, a := range active {
			if a.Unit == "N01" {
				sent++
			}
		}
		want := 0
		if got.Status == dispatch.ConsentAccepted {
			want = 1
		}
		if sent != want || len(l.commands("N01")) != want || (errs[0] == nil) != (want == 1) {
			t.Fatalf("round %d: consent %s with %d assignments and %d commands of N01 (errors %v, %v)", round, got.Status, sent, len(l.commands("N01")), errs[0], errs[1])
		}
	}
}
