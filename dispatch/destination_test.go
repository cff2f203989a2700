package dispatch_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/geo"
)

// strokeArea is the test city (two counties, one urban zone) with four
// hospitals: east of the county seat a general hospital at 1 km and
// stroke centres at 3 and 6 km, and one with every centre across the
// county line.
func strokeArea(tb testing.TB) *dispatch.Area {
	tb.Helper()
	east := func(km float64) orb.Point { return metresEast(centre, km*1000) }
	a := testArea(tb, 1)
	a.Hospitals = []dispatch.Hospital{
		{ID: "GEN", Name: "general", Jurisdiction: countyID, Location: east(1)},
		{ID: "STK3", Name: "stroke 3 km", Jurisdiction: countyID, Location: east(3), Centres: []dispatch.Centre{dispatch.Stroke, dispatch.ChestPain}},
		{ID: "STK6", Name: "stroke 6 km", Jurisdiction: countyID, Location: east(6), Centres: []dispatch.Centre{dispatch.Stroke}},
		{ID: "FAR", Name: "neighbour", Jurisdiction: "510302", Location: orb.Point{105.5, 29.2}, Centres: dispatch.Centres},
	}
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	return a
}

func newStrokeFixture(t *testing.T) (*fixture, *memory.Audit) {
	t.Helper()
	audit := memory.NewAudit()
	f := &fixture{clock: dispatchtest.NewClock(clock0), bus: dispatch.NewBus(), cmds: &recorder{}, area: strokeArea(t), seq: map[string]uint64{}}
	svc, err := dispatch.NewService(context.Background(), dispatch.Config{
		Area: f.area, Store: memory.NewStore(), Events: f.bus, Commands: f.cmds, Auditor: audit, Now: f.clock.Now, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f, audit
}

func (f *fixture) strokeCall(t *testing.T) *dispatch.Incident {
	t.Helper()
	inc, _, _, err := f.svc.CreateIncident(context.Background(), dispatch.System, dispatch.NewIncident{
		Location: dispatch.LatLon{Lat: centre.Lat(), Lon: centre.Lon()}, Priority: 1, Category: dispatch.CatStroke,
	})
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

func hospitalIDs(ds []dispatch.Destination) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Hospital)
	}
	return out
}

var li = dispatch.Principal{Name: "li", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}

// TestStrokeAdvisedNearestOpenStrokeCentre is the scenario of issue 8: a
// stroke call is advised the nearest stroke centre not on diversion, by
// ETA from the scene, never the nearer general hospital; a diversion
// moves the advice to the next centre until it ends by itself; the
// assign command carries the advice.
func TestStrokeAdvisedNearestOpenStrokeCentre(t *testing.T) {
	ctx := context.Background()
	f, audit := newStrokeFixture(t)
	inc := f.strokeCall(t)
	d, err := f.svc.Destinations(ctx, li, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Centre != dispatch.Stroke || d.Advice == nil || d.Advice.Hospital != "STK3" || len(d.Advice.Reasons) == 0 {
		t.Fatalf("advice %+v, want STK3 with a reason", d.Advice)
	}
	if got := hospitalIDs(d.Hospitals); strings.Join(got, ",") != "STK3,STK6,FAR,GEN" {
		t.Fatalf("hospitals %v, want capable by ETA, then the general one", got)
	}
	for i, h := range d.Hospitals {
		if h.Rank != i+1 || (i > 0 && h.Capable && h.ETAS < d.Hospitals[i-1].ETAS) {
			t.Fatalf("hospitals not ranked: %+v", d.Hospitals)
		}
	}

	// STK3's CT is down for two hours.
	until := f.clock.Now().Add(2 * time.Hour)
	h, err := f.svc.SetDiversion(ctx, li, "STK3", dispatch.Diversion{Diversion: true, Until: until, Reason: "CT down"})
	if err != nil || !h.Diversion || !h.DiversionUntil.Equal(until) {
		t.Fatalf("set diversion: %+v, %v", h, err)
	}
	d, _ = f.svc.Destinations(ctx, li, inc.ID)
	if d.Advice.Hospital != "STK6" {
		t.Fatalf("advice %s with STK3 diverting, want STK6", d.Advice.Hospital)
	}
	last := d.Hospitals[len(d.Hospitals)-1]
	if last.Hospital != "STK3" || !last.Diversion || !strings.Contains(strings.Join(last.Reasons, " "), "CT down") {
		t.Fatalf("diverting hospital listed %+v, want last with its reason", last)
	}
	hs, _ := f.svc.Hospitals(ctx, "")
	for _, h := range hs {
		if (h.ID == "STK3") != h.Diversion {
			t.Fatalf("hospitals %+v, want only STK3 diverting", hs)
		}
	}

	// The assign command advises STK6.
	f.move(t, "U01", centre)
	if _, err := f.svc.Assign(ctx, li, inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}
	var dest struct{ ID string }
	_ = json.Unmarshal(f.commands("U01")[0].Destination, &dest)
	if dest.ID != "STK6" {
		t.Fatalf("assign command's destination %q, want STK6", dest.ID)
	}

	// The diversion ends by itself.
	f.clock.Add(2*time.Hour + time.Second)
	d, _ = f.svc.Destinations(ctx, li, inc.ID)
	if d.Advice.Hospital != "STK3" {
		t.Fatalf("advice %s after the diversion ended, want STK3", d.Advice.Hospital)
	}
	log, _ := audit.AuditLog(ctx, 0, 0)
	if len(log) == 0 || log[len(log)-2].Action != dispatch.AuditDiversion || log[len(log)-2].Subject != "STK3" {
		t.Fatalf("audit %+v, want the diversion", log)
	}
}

// TestDestinationFallbacks: when every stroke centre diverts the advice
// is the nearest hospital not on diversion, and when every hospital
// diverts the nearest stroke centre despite it; each says why.
func TestDestinationFallbacks(t *testing.T) {
	ctx := context.Background()
	f, _ := newStrokeFixture(t)
	inc := f.strokeCall(t)
	city := dispatch.Principal{Name: "city", Role: dispatch.RoleCity, Jurisdiction: cityID}
	for _, id := range []string{"STK3", "STK6", "FAR"} {
		if _, err := f.svc.SetDiversion(ctx, city, id, dispatch.Diversion{Diversion: true}); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := f.svc.Destinations(ctx, li, inc.ID)
	if d.Advice.Hospital != "GEN" || !strings.Contains(d.Advice.Reasons[0], "every stroke centre is on diversion") {
		t.Fatalf("advice %+v, want GEN because every stroke centre diverts", d.Advice)
	}
	if _, err := f.svc.SetDiversion(ctx, li, "GEN", dispatch.Diversion{Diversion: true}); err != nil {
		t.Fatal(err)
	}
	d, _ = f.svc.Destinations(ctx, li, inc.ID)
	if d.Advice.Hospital != "STK3" || !strings.Contains(d.Advice.Reasons[0], "every hospital is on diversion") {
		t.Fatalf("advice %+v, want STK3 despite its diversion", d.Advice)
	}
	// Lifted: STK3 again, on its merits.
	if _, err := f.svc.SetDiversion(ctx, li, "STK3", dispatch.Diversion{}); err != nil {
		t.Fatal(err)
	}
	d, _ = f.svc.Destinations(ctx, li, inc.ID)
	if d.Advice.Hospital != "STK3" || d.Advice.Diversion {
		t.Fatalf("advice %+v after lifting, want STK3 open", d.Advice)
	}
}

// TestNoCentreInTheArea: a neonatal call in an area without a neonatal
// centre is advised the nearest hospital, saying so.
func TestNoCentreInTheArea(t *testing.T) {
	ctx := context.Background()
	f, _ := newStrokeFixture(t)
	f.area.Hospitals = f.area.Hospitals[:3] // no FAR: no neonatal centre
	inc, _, _, err := f.svc.CreateIncident(ctx, dispatch.System, dispatch.NewIncident{Location: dispatch.LatLon{Lat: centre.Lat(), Lon: centre.Lon()}, Priority: 2, Category: dispatch.CatNeonatal})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f.svc.Destinations(ctx, li, inc.ID)
	if d.Advice.Hospital != "GEN" || !strings.Contains(d.Advice.Reasons[0], "no neonatal centre in the area") {
		t.Fatalf("advice %+v", d.Advice)
	}
}

// TestSetDiversionRules: who may set a diversion, and what it may say.
func TestSetDiversionRules(t *testing.T) {
	ctx := context.Background()
	f, _ := newStrokeFixture(t)
	now := f.clock.Now()
	tests := []struct {
		name string
		by   dispatch.Principal
		id   string
		d    dispatch.Diversion
		code string
	}{
		{"other county", dispatch.Principal{Name: "w", Role: dispatch.RoleDispatcher, Jurisdiction: "510302"}, "STK3", dispatch.Diversion{Diversion: true}, dispatch.CodeForbidden},
		{"integrator", dispatch.Principal{Name: "i", Role: dispatch.RoleIntegrator, Jurisdiction: countyID}, "STK3", dispatch.Diversion{Diversion: true}, dispatch.CodeForbidden},
		{"no role", dispatch.Principal{Name: "x"}, "STK3", dispatch.Diversion{Diversion: true}, dispatch.CodeForbidden},
		{"unknown hospital", li, "NOPE", dispatch.Diversion{Diversion: true}, dispatch.CodeNotFound},
		{"until in the past", li, "STK3", dispatch.Diversion{Diversion: true, Until: now.Add(-time.Minute)}, dispatch.CodeInvalid},
		{"until too far", li, "STK3", dispatch.Diversion{Diversion: true, Until: now.Add(8 * 24 * time.Hour)}, dispatch.CodeInvalid},
		{"until without diversion", li, "STK3", dispatch.Diversion{Until: now.Add(time.Hour)}, dispatch.CodeInvalid},
		{"control character", li, "STK3", dispatch.Diversion{Diversion: true, Reason: "a\x00b"}, dispatch.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.SetDiversion(ctx, tt.by, tt.id, tt.d)
			if got := dispatch.ErrorCode(err); got != tt.code {
				t.Fatalf("error %v (code %s), want %s", err, got, tt.code)
			}
		})
	}
	hs, _ := f.svc.Hospitals(ctx, "")
	for _, h := range hs {
		if h.Diversion {
			t.Fatalf("%s diverting after refused changes", h.ID)
		}
	}
	// The neighbour county's dispatcher may set its own hospital.
	if _, err := f.svc.SetDiversion(ctx, dispatch.Principal{Name: "w", Role: dispatch.RoleDispatcher, Jurisdiction: "510302"}, "FAR", dispatch.Diversion{Diversion: true}); err != nil {
		t.Fatal(err)
	}
}

// TestPrearrival: a unit that starts transporting announces the patient
// to the advised hospital: category, priority and the ETA from where the
// unit is.
func TestPrearrival(t *testing.T) {
	ctx := context.Background()
	f, _ := newStrokeFixture(t)
	sub := f.bus.Subscribe(1024)
	defer sub.Close()
	inc := f.strokeCall(t)
	f.move(t, "U01", centre)
	if _, err := f.svc.Assign(ctx, li, inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}
	f.mustPress(t, "U01", "en_route", "on_scene")
	f.move(t, "U01", metresEast(centre, 1000)) // drove 1 km towards STK3
	f.mustPress(t, "U01", "transporting")
	var got []dispatch.Prearrival
	for len(sub.C) > 0 {
		if e := <-sub.C; e.Type == dispatch.EventPrearrival {
			if e.Jurisdiction != countyID {
				t.Fatalf("prearrival scoped to %q", e.Jurisdiction)
			}
			got = append(got, *e.Prearrival)
		}
	}
	if len(got) != 1 {
		t.Fatalf("prearrival events %+v, want one", got)
	}
	p := got[0]
	want := geo.DefaultETA.Estimate(metresEast(centre, 1000), metresEast(centre, 3000), inc.Zone, inc.Zone).Duration.Seconds()
	if p.Incident != inc.ID || p.Unit != "U01" || p.Hospital != "STK3" || p.Category != dispatch.CatStroke || p.Priority != 1 || p.ETAS != want || p.At.IsZero() {
		t.Fatalf("prearrival %+v, want STK3 in %.0f s", p, want)
	}
}
