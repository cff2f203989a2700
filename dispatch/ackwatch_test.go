package dispatch_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// ackFixture is a county with U01 at the scene, U02 1 km away and U03
// 2 km away, a call at the scene assigned to U01, and an ack watch of
// 30 s with policy.
type ackFixture struct {
	*fixture
	watch *dispatch.AckWatch
	audit *memory.Audit
	inc   *dispatch.Incident
	a     *dispatch.Assignment
	al    *alertLog
}

func newAckFixture(t *testing.T, policy dispatch.AckPolicy) *ackFixture {
	t.Helper()
	audit := memory.NewAudit()
	f := newFixtureWith(t, 3, func(c *dispatch.Config) { c.Auditor = audit })
	f.move(t, "U01", centre)
	f.move(t, "U02", orb.Point{centre[0] + 0.01, centre[1]})
	f.move(t, "U03", orb.Point{centre[0] + 0.02, centre[1]})
	w, err := dispatch.NewAckWatch(f.svc, 30*time.Second, policy)
	if err != nil {
		t.Fatal(err)
	}
	af := &ackFixture{fixture: f, watch: w, audit: audit, al: f.alertLog(t)}
	af.inc, _ = f.call(t, centre)
	if af.a, err = f.svc.Assign(context.Background(), dispatch.System, af.inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}
	return af
}

// sweep moves the clock by d (terminals keep reporting) and runs one pass of the watch.
func (f *ackFixture) sweep(t *testing.T, d time.Duration) {
	t.Helper()
	f.clock.Add(d)
	f.move(t, "U01", centre)
	f.move(t, "U02", orb.Point{centre[0] + 0.01, centre[1]})
	f.move(t, "U03", orb.Point{centre[0] + 0.02, centre[1]})
	if err := f.watch.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// alertLog reads the alerts a fixture's bus carries as they are
// published (Publish is synchronous), so that a test can also tell that
// none came.
type alertLog struct {
	sub *dispatch.Subscription
	got []dispatch.Alert
}

func (f *fixture) alertLog(tb testing.TB) *alertLog {
	tb.Helper()
	l := &alertLog{sub: f.bus.Subscribe(1 << 14)}
	tb.Cleanup(l.sub.Close)
	return l
}

// ofKind returns the alerts of kind published so far.
func (l *alertLog) ofKind(kind dispatch.AlertKind) []dispatch.Alert {
	for len(l.sub.C) > 0 {
		if e := <-l.sub.C; e.Type == dispatch.EventAlert {
			l.got = append(l.got, *e.Alert)
		}
	}
	var out []dispatch.Alert
	for _, al := range l.got {
		if al.Kind == kind {
			out = append(out, al)
		}
	}
	return out
}

// TestAckTimeoutOffers: an assignment its terminal does not acknowledge
// raises one ack_timeout alert after the timeout, naming the next
// candidate; the dispatcher decides, so nothing else changes.
func TestAckTimeoutOffers(t *testing.T) {
	f := newAckFixture(t, dispatch.AckOffer)
	f.sweep(t, 29*time.Second)
	if got := f.al.ofKind(dispatch.AlertAckTimeout); len(got) != 0 {
		t.Fatalf("alert before the timeout: %+v", got)
	}
	f.sweep(t, 2*time.Second)
	got := f.al.ofKind(dispatch.AlertAckTimeout)
	if len(got) != 1 || got[0].Unit != "U01" || got[0].Assignment != f.a.ID || got[0].Next == nil || got[0].Next.Unit != "U02" {
		t.Fatalf("alerts %+v, want one ack_timeout for U01 naming U02", got)
	}
	f.sweep(t, time.Minute)
	if got := f.al.ofKind(dispatch.AlertAckTimeout); len(got) != 1 {
		t.Fatalf("%d ack_timeout alerts, want the one", len(got))
	}
	if st := f.status(t, "U01"); st.Status != dispatch.Dispatched {
		t.Fatalf("U01 %s, want still dispatched: the dispatcher decides", st.Status)
	}
}

// TestAckTimeoutAlertOnly: policy alert names no candidate.
func TestAckTimeoutAlertOnly(t *testing.T) {
	f := newAckFixture(t, dispatch.AckAlert)
	f.sweep(t, 31*time.Second)
	if got := f.al.ofKind(dispatch.AlertAckTimeout); len(got) != 1 || got[0].Next != nil {
		t.Fatalf("alerts %+v, want one without a next candidate", got)
	}
}

// TestAckedNotAlerted: an acknowledged assignment, or one the crew works
// (a press accepts it), raises nothing.
func TestAckedNotAlerted(t *testing.T) {
	for _, how := range []string{"ack", "press"} {
		t.Run(how, func(t *testing.T) {
			f := newAckFixture(t, dispatch.AckReassign)
			ctx := context.Background()
			f.clock.Add(10 * time.Second)
			var err error
			if how == "ack" {
				err = f.svc.Ack(ctx, telemetry.Ack{Unit: "U01", Assignment: f.a.ID, Accepted: true, Time: f.clock.Now()})
			} else {
				err = f.svc.Status(ctx, telemetry.Status{Unit: "U01", Status: "en_route", Time: f.clock.Now()})
			}
			if err != nil {
				t.Fatal(err)
			}
			f.sweep(t, time.Minute)
			if got := f.al.ofKind(dispatch.AlertAckTimeout); len(got) != 0 {
				t.Fatalf("alert for an answered assignment: %+v", got)
			}
		})
	}
}

// TestUnackedReassigned is the scenario of issue 8: with policy reassign,
// an unacked assignment is re-offered after the timeout: the silent unit
// is stood down (its terminal gets cancel) and the next candidate
// assigned (its terminal gets assign) in one decision, so the call never
// has two units where one was asked; the automatic step is audited. A
// unit that stayed silent is not assigned the call again.
func TestUnackedReassigned(t *testing.T) {
	ctx := context.Background()
	f := newAckFixture(t, dispatch.AckReassign)
	f.sweep(t, 31*time.Second)
	al := f.al.ofKind(dispatch.AlertAckTimeout)
	if len(al) != 1 || al[0].Next == nil || al[0].Next.Unit != "U02" || !strings.Contains(al[0].Message, "U02 assigned") {
		t.Fatalf("alerts %+v, want one saying U02 was assigned", al)
	}
	as, err := f.svc.Assignments(ctx, dispatch.System, f.inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Status != dispatch.AssignCancelled || as[1].Unit != "U02" || as[1].Status != dispatch.AssignOffered || as[1].By != "system" {
		t.Fatalf("assignments %+v, want U01's cancelled and U02's offered by system", as)
	}
	active, _ := f.svc.ActiveAssignments(ctx, dispatch.System)
	if len(active) != 1 {
		t.Fatalf("%d active assignments, want 1", len(active))
	}
	if st := f.status(t, "U01"); st.Status != dispatch.Available {
		t.Fatalf("U01 %s, want available", st.Status)
	}
	if st := f.status(t, "U02"); st.Status != dispatch.Dispatched || st.Assignment != as[1].ID {
		t.Fatalf("U02 %s on %s, want dispatched on %s", st.Status, st.Assignment, as[1].ID)
	}
	if c := f.commands("U01"); c[len(c)-1].Type != telemetry.CommandCancel || c[len(c)-1].Assignment != f.a.ID {
		t.Fatalf("U01's commands %+v, want a cancel last", c)
	}
	if c := f.commands("U02"); len(c) != 1 || c[0].Type != telemetry.CommandAssign || c[0].Assignment != as[1].ID {
		t.Fatalf("U02's commands %+v, want its assign", c)
	}
	log, _ := f.audit.AuditLog(ctx, 0, 0)
	var found bool
	for _, e := range log {
		if e.Action == dispatch.AuditReassign && e.Actor == "system" && e.Subject == f.inc.ID {
			var d map[string]string
			_ = json.Unmarshal(e.Detail, &d)
			found = d["from_unit"] == "U01" && d["unit"] == "U02" && d["reason"] == "ack_timeout"
		}
	}
	if !found {
		t.Fatalf("no reassign audit entry from U01 to U02: %+v", log)
	}
	ts, _ := f.svc.Transitions(ctx, dispatch.System, f.inc.ID)
	if last := ts[len(ts)-1]; last.Unit != "U02" || last.To != dispatch.Dispatched || last.Source != dispatch.SourceSystem {
		t.Fatalf("last transition %+v, want U02 dispatched by system", last)
	}

	// U02 is silent too: U03 is next, never U01 again.
	f.sweep(t, 31*time.Second)
	al = f.al.ofKind(dispatch.AlertAckTimeout)
	if len(al) != 2 || al[1].Unit != "U02" || al[1].Next == nil || al[1].Next.Unit != "U03" {
		t.Fatalf("second alert %+v, want U02 replaced by U03", al)
	}
}

// TestUnackedNoCandidateStays: with nobody else free, the silent unit
// stays assigned: a unit that may yet answer beats none.
func TestUnackedNoCandidateStays(t *testing.T) {
	f := newAckFixture(t, dispatch.AckReassign)
	ctx := context.Background()
	for _, u := range []string{"U02", "U03"} {
		if err := f.svc.Presence(ctx, telemetry.Presence{Unit: u, Online: false, Time: f.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Add(31 * time.Second)
	if err := f.watch.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if al := f.al.ofKind(dispatch.AlertAckTimeout); len(al) != 1 || al[0].Next != nil || !strings.Contains(al[0].Message, "stays assigned") {
		t.Fatalf("alerts %+v", al)
	}
	if st := f.status(t, "U01"); st.Status != dispatch.Dispatched {
		t.Fatalf("U01 %s, want still dispatched", st.Status)
	}
}

// TestAckTimeoutFromTheRecord: the time runs from the assignment in the
// record, so a watch started later (a restart) raises the alert at the
// right time, not one timeout after it started.
func TestAckTimeoutFromTheRecord(t *testing.T) {
	f := newAckFixture(t, dispatch.AckOffer)
	f.clock.Add(20 * time.Second)
	w, err := dispatch.NewAckWatch(f.svc, 30*time.Second, dispatch.AckOffer) // "after a restart"
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(11 * time.Second)
	if err := w.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAckWatchPolicy(t *testing.T) {
	f := newFixture(t, 1)
	if _, err := dispatch.NewAckWatch(f.svc, time.Second, "ignore"); dispatch.ErrorCode(err) != dispatch.CodeInvalid {
		t.Fatalf("unknown policy: %v", err)
	}
}
