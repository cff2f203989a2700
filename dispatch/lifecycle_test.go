package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// press is a crew status press of unit at the fixture's clock, one
// minute on.
func (f *fixture) press(tb testing.TB, unit, status string) error {
	tb.Helper()
	f.clock.Add(time.Minute)
	return f.svc.Status(context.Background(), telemetry.Status{Unit: unit, Time: f.clock.Now(), Status: status})
}

func (f *fixture) mustPress(tb testing.TB, unit string, statuses ...string) {
	tb.Helper()
	for _, s := range statuses {
		if err := f.press(tb, unit, s); err != nil {
			tb.Fatalf("press %s: %v", s, err)
		}
	}
}

func (f *fixture) status(tb testing.TB, unit string) dispatch.UnitState {
	tb.Helper()
	st, err := f.svc.Unit(dispatch.System, unit)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func (f *fixture) incident(tb testing.TB, id string) *dispatch.Incident {
	tb.Helper()
	inc, err := f.svc.Incident(context.Background(), dispatch.System, id)
	if err != nil {
		tb.Fatal(err)
	}
	return inc
}

// commands returns the commands sent to unit so far.
func (f *fixture) commands(unit string) []telemetry.Command {
	f.cmds.mu.Lock()
	defer f.cmds.mu.Unlock()
	var out []telemetry.Command
	for _, s := range f.cmds.sent {
		if s.unit == unit {
			out = append(out, s.cmd)
		}
	}
	return out
}

// alerts collects the alert events published on the fixture's bus.
type alerts struct {
	mu  sync.Mutex
	got []dispatch.Alert
}

func (f *fixture) alerts(tb testing.TB) *alerts {
	tb.Helper()
	a := &alerts{}
	sub := f.bus.Subscribe(1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.C {
			if e.Type == dispatch.EventAlert {
				a.mu.Lock()
				a.got = append(a.got, *e.Alert)
				a.mu.Unlock()
			}
		}
	}()
	tb.Cleanup(func() { sub.Close(); <-done })
	return a
}

func (a *alerts) wait(tb testing.TB, n int) []dispatch.Alert {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		got := append([]dispatch.Alert(nil), a.got...)
		a.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("got %d alerts, want %d: %+v", len(got), n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStopBeforeThePatientReopens: a unit that cannot go on puts its call
// back in the queue, reopened, with an alert naming the next candidate;
// it never closes the call as completed.
func TestStopBeforeThePatientReopens(t *testing.T) {
	tests := []struct {
		name    string
		presses []string // after dispatch
		last    string
	}{
		{"out of service en route", []string{"en_route"}, "out_of_service"},
		{"out of service when dispatched", nil, "out_of_service"},
		{"cleared en route", []string{"en_route"}, "available"},
		{"out of service on scene", []string{"en_route", "on_scene"}, "out_of_service"},
		{"out of service transporting", []string{"en_route", "on_scene", "transporting"}, "out_of_service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, 2)
			al := f.alerts(t)
			f.move(t, "U01", centre)
			f.move(t, "U02", orb.Point{centre[0] + 0.01, centre[1]})
			inc, _ := f.call(t, centre)
			a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
			if err != nil {
				t.Fatal(err)
			}
			f.mustPress(t, "U01", tt.presses...)
			f.move(t, "U02", orb.Point{centre[0] + 0.01, centre[1]}) // still reporting
			f.mustPress(t, "U01", tt.last)

			if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentOpen || !got.ClosedAt.IsZero() {
				t.Fatalf("incident %s (closed at %v), want open again", got.Status, got.ClosedAt)
			}
			as, _ := f.svc.Assignments(ctx, dispatch.System, inc.ID)
			if len(as) != 1 || as[0].ID != a.ID || as[0].Status != dispatch.AssignAborted || as[0].Reason == "" {
				t.Fatalf("assignments %+v, want %s aborted with a reason", as, a.ID)
			}
			if got := f.status(t, "U01"); string(got.Status) != tt.last || got.Incident != "" {
				t.Fatalf("unit %s on %q, want %s and free of the call", got.Status, got.Incident, tt.last)
			}
			got := al.wait(t, 1)
			if got[0].Kind != dispatch.AlertAborted || got[0].Incident != inc.ID || got[0].Unit != "U01" {
				t.Fatalf("alert %+v", got[0])
			}
			if tt.last == "out_of_service" && (got[0].Next == nil || got[0].Next.Unit != "U02") {
				t.Fatalf("alert offers %+v, want U02 next", got[0].Next)
			}
		})
	}
}

// TestDoneClosesTheCall: a unit that clears after doing its part still
// closes the call, as before.
func TestDoneClosesTheCall(t *testing.T) {
	tests := []struct {
		name    string
		presses []string
	}{
		{"transported", []string{"en_route", "on_scene", "transporting", "at_hospital", "available"}},
		{"treated on scene", []string{"en_route", "on_scene", "available"}},
		{"out of service after handing over", []string{"en_route", "on_scene", "transporting", "at_hospital", "out_of_service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, 1)
			f.move(t, "U01", centre)
			inc, _ := f.call(t, centre)
			if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
				t.Fatal(err)
			}
			f.mustPress(t, "U01", tt.presses...)
			if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentClosed {
				t.Fatalf("incident %s, want closed", got.Status)
			}
			as, _ := f.svc.Assignments(ctx, dispatch.System, inc.ID)
			if as[0].Status != dispatch.AssignCompleted {
				t.Fatalf("assignment %s, want completed", as[0].Status)
			}
		})
	}
}

// TestImpossiblePressRefused: a press the lifecycle does not allow changes
// nothing, tells the terminal why with a reject command, and is counted.
func TestImpossiblePressRefused(t *testing.T) {
	tests := []struct {
		name    string
		assign  bool
		before  []string
		press   string
		wantNow dispatch.UnitStatus
	}{
		{"free unit on scene", false, nil, "on_scene", dispatch.Available},
		{"free unit transporting", false, nil, "transporting", dispatch.Available},
		{"dispatched to at hospital", true, nil, "at_hospital", dispatch.Dispatched},
		{"dispatched to transporting", true, nil, "transporting", dispatch.Dispatched},
		{"at hospital back en route", true, []string{"en_route", "on_scene", "transporting", "at_hospital"}, "en_route", dispatch.AtHospital},
		{"en route to at hospital", true, []string{"en_route"}, "at_hospital", dispatch.EnRoute},
		{"transporting cleared without the hospital", true, []string{"en_route", "on_scene", "transporting"}, "available", dispatch.Transporting},
		{"out of service to on scene", false, []string{"out_of_service"}, "on_scene", dispatch.OutOfService},
		{"unknown status", false, nil, "lunch", dispatch.Available},
		{"dispatched is not a press", false, nil, "dispatched", dispatch.Available},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			reg := prometheus.NewRegistry()
			f := newFixtureWith(t, 1, func(c *dispatch.Config) { c.Registry = reg })
			f.move(t, "U01", centre)
			inc, _ := f.call(t, centre)
			if tt.assign {
				if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
					t.Fatal(err)
				}
			}
			f.mustPress(t, "U01", tt.before...)
			before := f.status(t, "U01")
			incBefore := f.incident(t, inc.ID)
			if err := f.press(t, "U01", tt.press); err != nil {
				t.Fatalf("a refused press is handled, not redelivered: %v", err)
			}
			after := f.status(t, "U01")
			if after.Status != tt.wantNow || after.Version != before.Version {
				t.Fatalf("unit %s (version %d), want %s unchanged (version %d)", after.Status, after.Version, tt.wantNow, before.Version)
			}
			if got := f.incident(t, inc.ID); got.Status != incBefore.Status || got.Version != incBefore.Version {
				t.Fatalf("incident %s v%d changed from %s v%d", got.Status, got.Version, incBefore.Status, incBefore.Version)
			}
			cmds := f.commands("U01")
			last := cmds[len(cmds)-1]
			if last.Type != telemetry.CommandReject || last.Status != tt.press || last.Reason == "" {
				t.Fatalf("last command %+v, want a reject of %s with a reason", last, tt.press)
			}
			if got := counter(t, reg, "lifeline_status_refused_total"); got != 1 {
				t.Fatalf("lifeline_status_refused_total = %v, want 1", got)
			}
			if _, err := telemetry.EncodeCommand(last); err != nil {
				t.Fatalf("the reject does not encode: %v", err)
			}
		})
	}
}

// counter sums a counter family of reg.
func counter(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	fams, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	sum := 0.0
	for _, fam := range fams {
		if fam.GetName() == name {
			for _, m := range fam.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestDeclinedNotOfferedAgain: a unit that declined a call is not its
// first recommendation a moment later; it is listed as excluded, saying
// why, and the alert names the next unit.
func TestDeclinedNotOfferedAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	al := f.alerts(t)
	f.move(t, "U01", centre)
	f.move(t, "U02", orb.Point{centre[0] + 0.02, centre[1]})
	inc, recs := f.call(t, centre)
	if recs.Candidates[0].Unit != "U01" {
		t.Fatalf("first candidate %s, want U01", recs.Candidates[0].Unit)
	}
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Ack(ctx, telemetry.Ack{Unit: "U01", Assignment: a.ID, Accepted: false, Reason: "crew on break", Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	recs, err = f.svc.Recommend(ctx, dispatch.System, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range recs.Candidates {
		if c.Unit == "U01" {
			t.Fatalf("U01 declined and is offered again: %+v", recs.Candidates)
		}
	}
	if len(recs.Candidates) == 0 || recs.Candidates[0].Unit != "U02" {
		t.Fatalf("candidates %+v, want U02 first", recs.Candidates)
	}
	excluded := false
	for _, e := range recs.Excluded {
		excluded = excluded || (e.Unit == "U01" && e.Reason != "")
	}
	if !excluded {
		t.Fatalf("U01 not listed as excluded: %+v", recs.Excluded)
	}
	got := al.wait(t, 1)
	if got[0].Kind != dispatch.AlertDeclined || got[0].Next == nil || got[0].Next.Unit != "U02" {
		t.Fatalf("alert %+v, want declined with U02 next", got[0])
	}
}

// TestEndIncident: a call is cancelled (its units stood down) or closed
// (once its units cleared) with an outcome; a live call is never closed.
func TestEndIncident(t *testing.T) {
	ctx := context.Background()
	t.Run("cancel stands the units down", func(t *testing.T) {
		f := newFixture(t, 2)
		f.move(t, "U01", centre)
		inc, _ := f.call(t, centre)
		a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
		if err != nil {
			t.Fatal(err)
		}
		f.mustPress(t, "U01", "en_route")
		got, err := f.svc.EndIncident(ctx, dispatch.System, inc.ID, dispatch.IncidentCancelled, "test call")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != dispatch.IncidentCancelled || got.Outcome != "test call" || got.ClosedAt.IsZero() {
			t.Fatalf("incident %+v", got)
		}
		if st := f.status(t, "U01"); st.Status != dispatch.Available || st.Incident != "" {
			t.Fatalf("unit %s on %q, want available", st.Status, st.Incident)
		}
		as, _ := f.svc.Assignments(ctx, dispatch.System, inc.ID)
		if as[0].Status != dispatch.AssignCancelled {
			t.Fatalf("assignment %s, want cancelled", as[0].Status)
		}
		cmds := f.commands("U01")
		if last := cmds[len(cmds)-1]; last.Type != telemetry.CommandCancel || last.Assignment != a.ID {
			t.Fatalf("last command %+v, want cancel of %s", last, a.ID)
		}
		// A late press of the stood-down crew changes nothing of the call.
		f.mustPress(t, "U01", "on_scene")
		if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentCancelled {
			t.Fatalf("incident %s after a late press", got.Status)
		}
		if _, err := f.svc.EndIncident(ctx, dispatch.System, inc.ID, dispatch.IncidentClosed, "again"); dispatch.ErrorCode(err) != dispatch.CodeConflict {
			t.Fatalf("ending an ended call: %v, want conflict", err)
		}
		if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U02"); dispatch.ErrorCode(err) != dispatch.CodeConflict {
			t.Fatalf("assigning to a cancelled call: %v, want conflict", err)
		}
	})
	t.Run("close refuses a live call", func(t *testing.T) {
		f := newFixture(t, 1)
		f.move(t, "U01", centre)
		inc, _ := f.call(t, centre)
		if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.EndIncident(ctx, dispatch.System, inc.ID, dispatch.IncidentClosed, "done"); dispatch.ErrorCode(err) != dispatch.CodeConflict {
			t.Fatalf("closing a call a unit is on: %v, want conflict", err)
		}
		if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentAssigned {
			t.Fatalf("incident %s, want still assigned", got.Status)
		}
	})
	t.Run("close an open call with an outcome", func(t *testing.T) {
		f := newFixture(t, 1)
		inc, _ := f.call(t, centre)
		got, err := f.svc.EndIncident(ctx, dispatch.System, inc.ID, dispatch.IncidentClosed, "caller no longer needs help")
		if err != nil || got.Status != dispatch.IncidentClosed || got.Outcome == "" {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		f := newFixture(t, 1)
		inc, _ := f.call(t, centre)
		integrator := dispatch.Principal{Name: "cad", Role: dispatch.RoleIntegrator, Jurisdiction: countyID}
		for _, tt := range []struct {
			name    string
			by      dispatch.Principal
			status  dispatch.IncidentStatus
			outcome string
			code    string
		}{
			{"integrator", integrator, dispatch.IncidentCancelled, "", dispatch.CodeForbidden},
			{"open is not an end", dispatch.System, dispatch.IncidentOpen, "", dispatch.CodeInvalid},
			{"NUL in the outcome", dispatch.System, dispatch.IncidentClosed, "done\x00", dispatch.CodeInvalid},
			{"outcome too long", dispatch.System, dispatch.IncidentClosed, string(make([]byte, 501)), dispatch.CodeInvalid},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.svc.EndIncident(ctx, tt.by, inc.ID, tt.status, tt.outcome)
				if got := dispatch.ErrorCode(err); got != tt.code {
					t.Fatalf("got %v, want %s", err, tt.code)
				}
				if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentOpen {
					t.Fatalf("incident %s after a refusal", got.Status)
				}
			})
		}
	})
}

// TestStandDown: one unit is stood down from a call; the call goes back
// in the queue when no other unit is on it.
func TestStandDown(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	f.move(t, "U01", centre)
	f.move(t, "U02", centre)
	inc, _ := f.call(t, centre)
	a1, _ := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	a2, _ := f.svc.Assign(ctx, dispatch.System, inc.ID, "U02")
	if _, err := f.svc.CancelAssignment(ctx, dispatch.System, inc.ID, a2.ID, "not needed"); err != nil {
		t.Fatal(err)
	}
	if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentAssigned {
		t.Fatalf("incident %s, want assigned (U01 still on it)", got.Status)
	}
	if st := f.status(t, "U02"); st.Status != dispatch.Available {
		t.Fatalf("U02 %s, want available", st.Status)
	}
	if _, err := f.svc.CancelAssignment(ctx, dispatch.System, inc.ID, a2.ID, ""); dispatch.ErrorCode(err) != dispatch.CodeConflict {
		t.Fatalf("standing down twice: %v, want conflict", err)
	}
	if _, err := f.svc.CancelAssignment(ctx, dispatch.System, "INC-nope", a1.ID, ""); dispatch.ErrorCode(err) != dispatch.CodeNotFound {
		t.Fatalf("wrong incident: %v, want not found", err)
	}
	if _, err := f.svc.CancelAssignment(ctx, dispatch.System, inc.ID, a1.ID, ""); err != nil {
		t.Fatal(err)
	}
	if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentOpen {
		t.Fatalf("incident %s, want open", got.Status)
	}
	cmds := f.commands("U02")
	if last := cmds[len(cmds)-1]; last.Type != telemetry.CommandCancel || last.Reason != "not needed" {
		t.Fatalf("U02's last command %+v", last)
	}
}

// failing is a Store whose Apply fails while failing is set, as a
// database that is down does.
type failing struct {
	dispatch.Store
	mu      sync.Mutex
	failing bool
}

func (s *failing) set(v bool) { s.mu.Lock(); s.failing = v; s.mu.Unlock() }

func (s *failing) Apply(ctx context.Context, c dispatch.Change) error {
	s.mu.Lock()
	f := s.failing
	s.mu.Unlock()
	if f {
		return errors.New("database unavailable")
	}
	return s.Store.Apply(ctx, c)
}

// TestPressStoredBeforeAcknowledged: while the record cannot store a
// press, Status fails (the broker does not acknowledge it and redelivers
// it) and nothing moves; the redelivery applies it.
func TestPressStoredBeforeAcknowledged(t *testing.T) {
	ctx := context.Background()
	store := &failing{Store: memory.NewStore()}
	f := newFixtureWith(t, 1, func(c *dispatch.Config) { c.Store = store })
	f.move(t, "U01", centre)
	inc, _ := f.call(t, centre)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	store.set(true)
	f.clock.Add(time.Minute)
	press := telemetry.Status{Unit: "U01", Time: f.clock.Now(), Status: "en_route"}
	if err := f.svc.Status(ctx, press); err == nil {
		t.Fatal("Status returned nil while the record was down: the press would be acknowledged and lost")
	}
	if st := f.status(t, "U01"); st.Status != dispatch.Dispatched {
		t.Fatalf("unit %s before the press was stored", st.Status)
	}
	if err := f.svc.Ack(ctx, telemetry.Ack{Unit: "U01", Assignment: a.ID, Accepted: false, Time: f.clock.Now()}); err == nil {
		t.Fatal("Ack returned nil while the record was down")
	}
	if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err == nil {
		t.Fatal("Assign succeeded while the record was down")
	}
	store.set(false)
	if err := f.svc.Status(ctx, press); err != nil { // the redelivery
		t.Fatal(err)
	}
	if st := f.status(t, "U01"); st.Status != dispatch.EnRoute {
		t.Fatalf("unit %s after the redelivery, want en_route", st.Status)
	}
	as, _ := f.svc.Assignments(ctx, dispatch.System, inc.ID)
	if as[0].Status != dispatch.AssignAccepted {
		t.Fatalf("assignment %s, want accepted by the press", as[0].Status)
	}
}

// TestTwoServersOneRecord: two engines on one record, each with its own
// picture, race for one unit: the record lets one win, and the loser
// learns the unit's state from the record and answers conflict.
func TestTwoServersOneRecord(t *testing.T) {
	ctx := context.Background()
	store := memory.NewStore()
	area := testArea(t, 1)
	clock := dispatchtest.NewClock(clock0)
	var svcs [2]*dispatch.Service
	for i := range svcs {
		svc, err := dispatch.NewService(ctx, dispatch.Config{Area: area, Store: store, Events: dispatch.NewBus(), Commands: &recorder{}, Now: clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		svcs[i] = svc
		fix := telemetry.Fix{Unit: "U01", Seq: 1, Time: clock.Now(), Lat: centre.Lat(), Lon: centre.Lon(), Received: clock.Now()}
		if err := svc.Positions(ctx, telemetry.Positions{Unit: "U01", Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
			t.Fatal(err)
		}
	}
	var incs [2]*dispatch.Incident
	for i, svc := range svcs {
		inc, _, _, err := svc.CreateIncident(ctx, dispatch.System, dispatch.NewIncident{
			Location: dispatch.LatLon{Lat: centre.Lat(), Lon: centre.Lon()}, Priority: 1, Category: dispatch.CatTrauma, ExternalID: fmt.Sprint(i), Source: "t",
		})
		if err != nil {
			t.Fatal(err)
		}
		incs[i] = inc
	}
	if _, err := svcs[0].Assign(ctx, dispatch.System, incs[0].ID, "U01"); err != nil {
		t.Fatal(err)
	}
	// The second server's picture still shows U01 available.
	if st, _ := svcs[1].Unit(dispatch.System, "U01"); st.Status != dispatch.Available {
		t.Fatalf("second picture already shows %s", st.Status)
	}
	_, err := svcs[1].Assign(ctx, dispatch.System, incs[1].ID, "U01")
	if dispatch.ErrorCode(err) != dispatch.CodeConflict {
		t.Fatalf("second server assigned U01 too: %v", err)
	}
	if st, _ := svcs[1].Unit(dispatch.System, "U01"); st.Status != dispatch.Dispatched || st.Incident != incs[0].ID {
		t.Fatalf("second picture after the conflict: %s on %q, want dispatched on %s", st.Status, st.Incident, incs[0].ID)
	}
	if got, _ := svcs[1].Incident(ctx, dispatch.System, incs[1].ID); got.Status != dispatch.IncidentOpen {
		t.Fatalf("the loser's incident is %s, want open", got.Status)
	}
	active, _ := store.ActiveAssignments(ctx)
	if len(active) != 1 {
		t.Fatalf("%d active assignments, want 1", len(active))
	}
}

// TestBackupListedOutsideRadius: in town the free unit at 4.9 km is
// listed inside the radius and the one at 5.1 km after it, labelled
// outside, as a backup; in the country the radius reported is the one
// used after widening.
func TestBackupListedOutsideRadius(t *testing.T) {
	f := newFixture(t, 2)
	east := func(m float64) orb.Point { return orb.Point{centre[0] + m/(111320*0.8729), centre[1]} } // cos(29.2°)
	f.move(t, "U01", east(4900))
	f.move(t, "U02", east(5100))
	_, recs := f.call(t, centre)
	if recs.RadiusM != 5000 {
		t.Fatalf("radius %v, want 5000", recs.RadiusM)
	}
	if len(recs.Candidates) != 2 {
		t.Fatalf("candidates %+v, want both units", recs.Candidates)
	}
	if c := recs.Candidates[0]; c.Unit != "U01" || !c.WithinRadius {
		t.Fatalf("first %+v, want U01 inside", c)
	}
	if c := recs.Candidates[1]; c.Unit != "U02" || c.WithinRadius || len(c.Reasons) == 0 {
		t.Fatalf("second %+v, want U02 outside, with a reason", c)
	}

	g := newFixture(t, 2)
	rural := orb.Point{centre[0], centre[1] + 0.15} // outside the urban zone
	north := func(m float64) orb.Point { return orb.Point{rural[0], rural[1] + m/111320} }
	g.move(t, "U01", north(12000))
	g.move(t, "U02", north(18000))
	inc, recs := g.call(t, rural)
	if inc.Zone != "rural" || recs.RadiusM != 20000 {
		t.Fatalf("zone %s radius %v, want rural widened to 20000", inc.Zone, recs.RadiusM)
	}
	if c := recs.Candidates[0]; c.Unit != "U01" || !c.WithinRadius {
		t.Fatalf("first %+v, want U01 inside the widened radius", c)
	}
}
