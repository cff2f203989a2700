package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// at reports unit at p with speed, as the pipeline would, after d.
func (f *fixture) at(tb testing.TB, unit string, p orb.Point, speed float64, d time.Duration) {
	tb.Helper()
	f.clock.Add(d)
	f.seq[unit]++
	fix := telemetry.Fix{Unit: unit, Seq: f.seq[unit], Time: f.clock.Now(), Lat: p.Lat(), Lon: p.Lon(), SpeedKmh: speed, Received: f.clock.Now()}
	if err := f.svc.Positions(context.Background(), telemetry.Positions{Unit: unit, Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
		tb.Fatal(err)
	}
}

// metresEast is p moved m metres east.
func metresEast(p orb.Point, m float64) orb.Point { return orb.Point{p[0] + m/(111320*0.8729), p[1]} }

// inferFixture has U01 dispatched to a call 3 km from it.
func inferFixture(t *testing.T, policy dispatch.InferPolicy) (*fixture, *dispatch.Incident, *alertLog) {
	t.Helper()
	f := newFixtureWith(t, 2, func(c *dispatch.Config) { c.Infer.Policy = policy })
	al := f.alertLog(t)
	f.move(t, "U01", metresEast(centre, 3000))
	inc, _ := f.call(t, centre)
	if _, err := f.svc.Assign(context.Background(), dispatch.System, inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}
	return f, inc, al
}

// TestInferOnSceneOffered: a unit that stops within 100 m of its call's
// scene for 30 s is offered to the dispatchers as on scene (an inferred
// alert); it is not set, and not offered twice. Passing by, or stopping
// too short, suggests nothing.
func TestInferOnSceneOffered(t *testing.T) {
	f, inc, al := inferFixture(t, "")
	if err := f.press(t, "U01", "en_route"); err != nil {
		t.Fatal(err)
	}
	f.at(t, "U01", metresEast(centre, 1500), 50, 10*time.Second)
	f.at(t, "U01", metresEast(centre, 60), 30, 10*time.Second) // through, at speed
	f.at(t, "U01", metresEast(centre, 40), 0, 10*time.Second)  // stops
	f.at(t, "U01", metresEast(centre, 40), 0, 20*time.Second)  // 20 s still
	f.at(t, "U01", metresEast(centre, 400), 20, 5*time.Second) // moves off
	f.at(t, "U01", metresEast(centre, 30), 2, 10*time.Second)  // back, slow
	f.at(t, "U01", metresEast(centre, 35), 1, 25*time.Second)  // 25 s
	if got := al.ofKind(dispatch.AlertInferred); len(got) != 0 {
		t.Fatalf("suggested before 30 s still: %+v", got)
	}
	f.at(t, "U01", metresEast(centre, 35), 0, 6*time.Second) // 31 s
	got := al.ofKind(dispatch.AlertInferred)
	if len(got) != 1 || got[0].Unit != "U01" || got[0].Incident != inc.ID || got[0].Status != dispatch.OnScene {
		t.Fatalf("alerts %+v, want one suggesting U01 on scene", got)
	}
	if st := f.status(t, "U01"); st.Status != dispatch.EnRoute {
		t.Fatalf("U01 %s: an offer must not set the status", st.Status)
	}
	f.at(t, "U01", metresEast(centre, 35), 0, time.Minute)
	if got := al.ofKind(dispatch.AlertInferred); len(got) != 1 {
		t.Fatalf("%d suggestions, want one", len(got))
	}

	// The dispatcher confirms: source dispatcher:<name>, audited.
	st, err := f.svc.SetStatus(context.Background(), dispatch.Principal{Name: "li", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}, "U01", dispatch.OnScene)
	if err != nil || st.Status != dispatch.OnScene {
		t.Fatalf("confirm: %s, %v", st.Status, err)
	}
	ts, _ := f.svc.Transitions(context.Background(), dispatch.System, inc.ID)
	if last := ts[len(ts)-1]; last.To != dispatch.OnScene || last.Source != "dispatcher:li" {
		t.Fatalf("last transition %+v, want on_scene by dispatcher:li", last)
	}
}

// TestInferApplied: with policy apply the engine sets on_scene and, once
// transporting, at_hospital inside a hospital's geofence, with source
// inferred; it never closes the call nor moves a unit backwards.
func TestInferApplied(t *testing.T) {
	ctx := context.Background()
	f, inc, al := inferFixture(t, dispatch.InferApply)
	f.at(t, "U01", metresEast(centre, 200), 0, 10*time.Second)
	f.at(t, "U01", metresEast(centre, 200), 0, 40*time.Second) // still, but 200 m off
	if st := f.status(t, "U01"); st.Status != dispatch.Dispatched {
		t.Fatalf("U01 %s 200 m from the scene, want dispatched", st.Status)
	}
	f.at(t, "U01", metresEast(centre, 50), 0, 10*time.Second)
	f.at(t, "U01", metresEast(centre, 50), 0, 30*time.Second)
	if st := f.status(t, "U01"); st.Status != dispatch.OnScene {
		t.Fatalf("U01 %s, want on_scene inferred (dispatched -> on_scene, as a crew may press)", st.Status)
	}
	if got := al.ofKind(dispatch.AlertInferred); len(got) != 1 || got[0].Status != dispatch.OnScene {
		t.Fatalf("alerts %+v, want one telling on_scene was set", got)
	}
	// On scene: standing still there infers nothing more (no transport, no clearing).
	f.at(t, "U01", metresEast(centre, 50), 0, 10*time.Minute)
	if st := f.status(t, "U01"); st.Status != dispatch.OnScene {
		t.Fatalf("U01 %s, want on_scene", st.Status)
	}
	if err := f.press(t, "U01", "transporting"); err != nil {
		t.Fatal(err)
	}
	// H2 is the far hospital; H1 is at the centre (the scene): the crew
	// drives off and then to H2's door.
	h2 := orb.Point{105.5, 29.2}
	f.at(t, "U01", metresEast(centre, 3000), 60, time.Minute)
	f.at(t, "U01", metresEast(h2, 120), 3, 20*time.Minute)
	f.at(t, "U01", metresEast(h2, 100), 0, 31*time.Second)
	if st := f.status(t, "U01"); st.Status != dispatch.AtHospital {
		t.Fatalf("U01 %s, want at_hospital inferred", st.Status)
	}
	ts, _ := f.svc.Transitions(ctx, dispatch.System, inc.ID)
	var inferred []dispatch.UnitStatus
	for _, tr := range ts {
		if tr.Source == dispatch.SourceInferred {
			inferred = append(inferred, tr.To)
		}
	}
	if len(inferred) != 2 || inferred[0] != dispatch.OnScene || inferred[1] != dispatch.AtHospital {
		t.Fatalf("inferred transitions %v, want on_scene and at_hospital", inferred)
	}
	// At the hospital for an hour: the call stays the crew's to clear.
	f.at(t, "U01", metresEast(h2, 100), 0, time.Hour)
	if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentAssigned {
		t.Fatalf("incident %s: inference closed the call", got.Status)
	}
}

// TestInferOnlyWhileGoing: a free unit stopped anywhere, or a unit
// transporting that stops at the scene, infers nothing.
func TestInferOnlyWhileGoing(t *testing.T) {
	f := newFixtureWith(t, 1, func(c *dispatch.Config) { c.Infer.Policy = dispatch.InferApply })
	al := f.alertLog(t)
	f.at(t, "U01", orb.Point{105.5, 29.2}, 0, time.Second) // at H2, free
	f.at(t, "U01", orb.Point{105.5, 29.2}, 0, time.Minute)
	if st := f.status(t, "U01"); st.Status != dispatch.Available {
		t.Fatalf("free unit %s", st.Status)
	}
	if got := al.ofKind(dispatch.AlertInferred); len(got) != 0 {
		t.Fatalf("alerts %+v for a free unit", got)
	}
}

// TestInferPolicyInvalid: an unknown policy is refused at start.
func TestInferPolicyInvalid(t *testing.T) {
	_, err := dispatch.NewService(context.Background(), dispatch.Config{Area: testArea(t, 1), Store: memory.NewStore(), Events: dispatch.NewBus(), Infer: dispatch.InferConfig{Policy: "guess"}})
	if err == nil || !strings.Contains(err.Error(), "guess") {
		t.Fatalf("service started with an unknown inference policy: %v", err)
	}
}

// TestSetStatusRules: a dispatcher sets statuses by the crew's rules; an
// impossible move is a conflict and changes nothing; an integrator may
// not; another county's dispatcher may not.
func TestSetStatusRules(t *testing.T) {
	ctx := context.Background()
	f, inc, _ := inferFixture(t, dispatch.InferOff)
	li := dispatch.Principal{Name: "li", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}
	tests := []struct {
		name string
		by   dispatch.Principal
		to   dispatch.UnitStatus
		code string
	}{
		{"impossible", li, dispatch.AtHospital, dispatch.CodeConflict},
		{"not a status", li, "flying", dispatch.CodeInvalid},
		{"dispatched is an assignment", li, dispatch.Dispatched, dispatch.CodeInvalid},
		{"integrator", dispatch.Principal{Name: "i", Role: dispatch.RoleIntegrator, Jurisdiction: countyID}, dispatch.EnRoute, dispatch.CodeForbidden},
		{"other county", dispatch.Principal{Name: "w", Role: dispatch.RoleDispatcher, Jurisdiction: "510302"}, dispatch.EnRoute, dispatch.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.SetStatus(ctx, tt.by, "U01", tt.to)
			if got := dispatch.ErrorCode(err); got != tt.code {
				t.Fatalf("error %v (code %s), want %s", err, got, tt.code)
			}
			if st := f.status(t, "U01"); st.Status != dispatch.Dispatched {
				t.Fatalf("U01 %s after a refused change", st.Status)
			}
		})
	}
	// A dispatcher standing a unit out of service en route reopens the call, as a press would.
	if _, err := f.svc.SetStatus(ctx, li, "U01", dispatch.EnRoute); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetStatus(ctx, li, "U01", dispatch.OutOfService); err != nil {
		t.Fatal(err)
	}
	if got := f.incident(t, inc.ID); got.Status != dispatch.IncidentOpen {
		t.Fatalf("incident %s, want open again", got.Status)
	}
	// Setting the status it has changes nothing.
	if st, err := f.svc.SetStatus(ctx, li, "U01", dispatch.OutOfService); err != nil || st.Status != dispatch.OutOfService {
		t.Fatalf("same status: %s, %v", st.Status, err)
	}
}

// BenchmarkPositions is the engine's part of ingesting a fix, for a free
// unit (nothing to infer), a unit en route (watched for on scene) and a
// unit transporting (watched against every hospital's geofence), with
// inference off as the baseline.
func BenchmarkPositions(b *testing.B) {
	cases := []struct {
		name   string
		policy dispatch.InferPolicy
		status []string // presses after the assignment; nil: not assigned
	}{
		{"off/available", dispatch.InferOff, nil},
		{"offer/available", dispatch.InferOffer, nil},
		{"offer/en_route", dispatch.InferOffer, []string{"en_route"}},
		{"offer/transporting", dispatch.InferOffer, []string{"en_route", "on_scene", "transporting"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := newFixtureWith(b, 1, func(cfg *dispatch.Config) { cfg.Infer.Policy = c.policy })
			ctx := context.Background()
			f.move(b, "U01", metresEast(centre, 3000))
			if c.status != nil {
				inc, _ := f.call(b, centre)
				if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
					b.Fatal(err)
				}
				f.mustPress(b, "U01", c.status...)
			}
			p := metresEast(centre, 2000)
			fixes := make([]telemetry.Fix, b.N)
			t0 := f.clock.Now()
			for i := range fixes {
				t := t0.Add(time.Duration(i+1) * time.Second)
				fixes[i] = telemetry.Fix{Unit: "U01", Seq: uint64(i + 100), Time: t, Lat: p.Lat(), Lon: p.Lon(), SpeedKmh: 40, Received: t}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range fixes {
				if err := f.svc.Positions(ctx, telemetry.Positions{Unit: "U01", Fixes: fixes[i : i+1], Latest: &fixes[i]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
