package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// A test county: a 0.4 x 0.4 degree square (about 39 x 44 km) near Fushun
// under a city, with an urban zone of 0.06 degrees around its centre.
var (
	centre   = orb.Point{105.0, 29.2}
	clock0   = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	cityID   = "510300"
	countyID = "510322"
)

func testArea(tb testing.TB, units int) *dispatch.Area {
	tb.Helper()
	a := &dispatch.Area{
		Name: "test",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: cityID, Name: "city"},
			{ID: countyID, Name: "county", Parent: cityID, Region: dispatchtest.Region(tb, countyID, dispatchtest.Square(centre, 0.2))},
			{ID: "510302", Name: "neighbour", Parent: cityID, Region: dispatchtest.Region(tb, "510302", dispatchtest.Square(orb.Point{105.5, 29.2}, 0.1))},
		},
		Zones:    []dispatch.UrbanZone{{ID: "Z1", Name: "seat", Jurisdiction: countyID, Region: dispatchtest.Region(tb, "Z1", dispatchtest.Square(centre, 0.03))}},
		Stations: []dispatch.Station{{ID: "S1", Name: "seat station", Jurisdiction: countyID, Location: centre}},
		Hospitals: []dispatch.Hospital{
			{ID: "H1", Name: "county", Jurisdiction: countyID, Location: centre, Centres: []dispatch.Centre{dispatch.ChestPain}},
			{ID: "H2", Name: "far", Jurisdiction: "510302", Location: orb.Point{105.5, 29.2}, Centres: dispatch.Centres},
		},
	}
	for i := range units {
		a.Units = append(a.Units, dispatch.Unit{ID: fmt.Sprintf("U%02d", i+1), Callsign: fmt.Sprintf("C%02d", i+1), Station: "S1", Jurisdiction: countyID, Capabilities: []string{dispatch.BLS}})
	}
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	return a
}

// quiet discards the log of services under test.
var quiet = slog.New(slog.DiscardHandler)

type sentCommand struct {
	unit string
	cmd  telemetry.Command
}

type recorder struct {
	mu   sync.Mutex
	sent []sentCommand
}

func (r *recorder) Send(ctx context.Context, unit string, cmd telemetry.Command) error {
	r.mu.Lock()
	r.sent = append(r.sent, sentCommand{unit, cmd})
	r.mu.Unlock()
	return nil
}

type fixture struct {
	svc   *dispatch.Service
	clock *dispatchtest.Clock
	bus   *dispatch.Bus
	cmds  *recorder
	area  *dispatch.Area
	seq   map[string]uint64
}

func newFixture(tb testing.TB, units int) *fixture {
	tb.Helper()
	return newFixtureWith(tb, units, nil)
}

// newFixtureWith is newFixture with the service's configuration changed by cfg.
func newFixtureWith(tb testing.TB, units int, cfg func(*dispatch.Config)) *fixture {
	tb.Helper()
	return fixtureOn(tb, testArea(tb, units), cfg)
}

// move reports unit at p now, as the pipeline would.
func (f *fixture) move(tb testing.TB, unit string, p orb.Point) {
	tb.Helper()
	f.seq[unit]++
	fix := telemetry.Fix{Unit: unit, Seq: f.seq[unit], Time: f.clock.Now(), Lat: p.Lat(), Lon: p.Lon(), Received: f.clock.Now()}
	if err := f.svc.Positions(context.Background(), telemetry.Positions{Unit: unit, Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
		tb.Fatal(err)
	}
}

func (f *fixture) call(tb testing.TB, p orb.Point) (*dispatch.Incident, dispatch.Recommendations) {
	tb.Helper()
	inc, recs, _, err := f.svc.CreateIncident(context.Background(), dispatch.System, dispatch.NewIncident{
		Location: dispatch.LatLon{Lat: p.Lat(), Lon: p.Lon()}, Priority: 1, Category: dispatch.CatChestPain,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return inc, recs
}

func TestRadiusPolicy(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		incident   orb.Point
		unitAt     orb.Point
		wantZone   geo.Zone
		wantRadius float64
		wantWithin bool
	}{
		{"urban unit within 5 km", centre, orb.Point{centre[0] + 0.03, centre[1]}, geo.Urban, 5000, true},
		{"urban unit beyond 5 km is still listed, outside the radius", centre, orb.Point{centre[0] + 0.1, centre[1]}, geo.Urban, 5000, false},
		{"rural within 10 km", orb.Point{centre[0] + 0.15, centre[1]}, orb.Point{centre[0] + 0.1, centre[1]}, geo.Rural, 10000, true},
		{"rural widened to 20 km", orb.Point{centre[0] + 0.15, centre[1] + 0.15}, orb.Point{centre[0] + 0.15, centre[1] + 0.01}, geo.Rural, 20000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1)
			f.move(t, "U01", tt.unitAt)
			inc, recs, _, err := f.svc.CreateIncident(ctx, dispatch.System, dispatch.NewIncident{Location: dispatch.LatLon{Lat: tt.incident.Lat(), Lon: tt.incident.Lon()}, Priority: 2, Category: dispatch.CatTrauma})
			if err != nil {
				t.Fatal(err)
			}
			if inc.Zone != tt.wantZone {
				t.Errorf("zone = %s, want %s", inc.Zone, tt.wantZone)
			}
			if recs.RadiusM != tt.wantRadius {
				t.Errorf("radius = %v, want %v", recs.RadiusM, tt.wantRadius)
			}
			if len(recs.Candidates) != 1 {
				t.Fatalf("candidates = %+v, want one", recs.Candidates)
			}
			if got := recs.Candidates[0].WithinRadius; got != tt.wantWithin {
				t.Errorf("within radius = %v, want %v (reasons %q)", got, tt.wantWithin, recs.Candidates[0].Reasons)
			}
		})
	}
}

func TestCreateIncidentInvalid(t *testing.T) {
	f := newFixture(t, 1)
	tests := []struct {
		name string
		in   dispatch.NewIncident
	}{
		{"outside every jurisdiction", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 39.9, Lon: 116.4}, Priority: 1, Category: dispatch.CatOther}},
		{"latitude out of range", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 91, Lon: 105}, Priority: 1, Category: dispatch.CatOther}},
		{"null island", dispatch.NewIncident{Priority: 1, Category: dispatch.CatOther}},
		{"priority 0", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 29.2, Lon: 105}, Priority: 0, Category: dispatch.CatOther}},
		{"unknown category", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 29.2, Lon: 105}, Priority: 1, Category: "burns"}},
		{"NUL in address", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 29.2, Lon: 105}, Priority: 1, Category: dispatch.CatOther, Address: "Main St\x00"}},
		{"NUL in external id", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 29.2, Lon: 105}, Priority: 1, Category: dispatch.CatOther, ExternalID: "x\x00", Source: "cad"}},
		{"tab in source", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 29.2, Lon: 105}, Priority: 1, Category: dispatch.CatOther, ExternalID: "x", Source: "c\tad"}},
		{"invalid UTF-8 in address", dispatch.NewIncident{Location: dispatch.LatLon{Lat: 29.2, Lon: 105}, Priority: 1, Category: dispatch.CatOther, Address: "\xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := f.svc.CreateIncident(context.Background(), dispatch.System, tt.in)
			if !errors.Is(err, dispatch.ErrInvalid) {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
	if got, _ := f.svc.Incidents(context.Background(), dispatch.System, dispatch.IncidentFilter{}); len(got) != 0 {
		t.Fatalf("incidents stored after invalid calls: %d", len(got))
	}
}

func TestCreateIncidentIdempotent(t *testing.T) {
	f := newFixture(t, 1)
	n := dispatch.NewIncident{Location: dispatch.LatLon{Lat: 29.2, Lon: 105}, Priority: 1, Category: dispatch.CatStroke, ExternalID: "city-42", Source: "city"}
	a, _, created, err := f.svc.CreateIncident(context.Background(), dispatch.System, n)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	b, _, created, err := f.svc.CreateIncident(context.Background(), dispatch.System, n)
	if err != nil || created || b.ID != a.ID {
		t.Fatalf("second: id=%s created=%v err=%v, want id %s not created", b.ID, created, err, a.ID)
	}
}

func TestAssignIsCompareAndSet(t *testing.T) {
	f := newFixture(t, 1)
	f.move(t, "U01", centre)
	var incs []*dispatch.Incident
	for range 16 {
		inc, _ := f.call(t, centre)
		incs = append(incs, inc)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for _, inc := range incs {
		wg.Go(func() {
			_, err := f.svc.Assign(context.Background(), dispatch.System, inc.ID, "U01")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, dispatch.ErrConflict):
				conflicts++
			default:
				t.Errorf("assign: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 15 {
		t.Fatalf("wins=%d conflicts=%d, want 1 and 15", wins, conflicts)
	}
	if len(f.cmds.sent) != 1 || f.cmds.sent[0].unit != "U01" || f.cmds.sent[0].cmd.Type != telemetry.CommandAssign {
		t.Fatalf("commands sent = %+v, want one assign to U01", f.cmds.sent)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	f.move(t, "U01", centre)
	inc, _ := f.call(t, centre)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if cmd := f.cmds.sent[0].cmd; cmd.Destination == nil {
		t.Errorf("assign command has no destination for a chest-pain call")
	}
	press := func(status string) {
		t.Helper()
		f.clock.Add(time.Minute)
		if err := f.svc.Status(ctx, telemetry.Status{Unit: "U01", Time: f.clock.Now(), Status: status, Incident: inc.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.Ack(ctx, telemetry.Ack{Unit: "U02", Assignment: a.ID, Accepted: false}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.svc.Unit(dispatch.System, "U01"); got.Status != dispatch.Dispatched {
		t.Fatalf("another unit's ack changed U01 to %s", got.Status)
	}
	if err := f.svc.Ack(ctx, telemetry.Ack{Unit: "U01", Assignment: a.ID, Accepted: true, Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"en_route", "on_scene", "transporting", "at_hospital"} {
		press(s)
		if got, _ := f.svc.Unit(dispatch.System, "U01"); string(got.Status) != s || got.Incident != inc.ID {
			t.Fatalf("after %s: status %s incident %q", s, got.Status, got.Incident)
		}
	}
	// A press delivered late (older than the last) changes nothing.
	if err := f.svc.Status(ctx, telemetry.Status{Unit: "U01", Time: clock0, Status: "en_route"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.svc.Unit(dispatch.System, "U01"); got.Status != dispatch.AtHospital {
		t.Fatalf("late press moved the unit to %s", got.Status)
	}
	press("available")
	got, _ := f.svc.Unit(dispatch.System, "U01")
	if got.Status != dispatch.Available || got.Incident != "" {
		t.Fatalf("after available: %s %q", got.Status, got.Incident)
	}
	closed, _ := f.svc.Incident(ctx, dispatch.System, inc.ID)
	if closed.Status != dispatch.IncidentClosed {
		t.Fatalf("incident %s, want closed", closed.Status)
	}
	ts, _ := f.svc.Transitions(ctx, dispatch.System, inc.ID)
	var path []dispatch.UnitStatus
	for _, tr := range ts {
		path = append(path, tr.To)
	}
	want := []dispatch.UnitStatus{dispatch.Dispatched, dispatch.EnRoute, dispatch.OnScene, dispatch.Transporting, dispatch.AtHospital, dispatch.Available}
	if !slices.Equal(path, want) {
		t.Fatalf("transitions %v, want %v", path, want)
	}
}

func TestDeclineReopens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 1)
	f.move(t, "U01", centre)
	inc, _ := f.call(t, centre)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Ack(ctx, telemetry.Ack{Unit: "U01", Assignment: a.ID, Accepted: false, Reason: "flat tyre", Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	got, _ := f.svc.Incident(ctx, dispatch.System, inc.ID)
	u, _ := f.svc.Unit(dispatch.System, "U01")
	if got.Status != dispatch.IncidentOpen || u.Status != dispatch.Available {
		t.Fatalf("incident %s unit %s, want open and available", got.Status, u.Status)
	}
	if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
		t.Fatalf("reassign after decline: %v", err)
	}
}

func TestStaleAndOffline(t *testing.T) {
	f := newFixture(t, 2)
	f.move(t, "U01", centre)
	f.move(t, "U02", orb.Point{centre[0] + 0.01, centre[1]})
	_ = f.svc.Presence(context.Background(), telemetry.Presence{Unit: "U01", Online: false, Time: f.clock.Now()})
	_, recs := f.call(t, centre)
	if len(recs.Candidates) != 1 || recs.Candidates[0].Unit != "U02" {
		t.Fatalf("candidates %+v, want U02 only (U01 offline)", recs.Candidates)
	}
	f.clock.Add(5 * time.Minute)
	_, recs = f.call(t, centre)
	if len(recs.Candidates) != 0 {
		t.Fatalf("stale units recommended: %+v", recs.Candidates)
	}
	reasons := map[string]string{}
	for _, e := range recs.Excluded {
		reasons[e.Unit] = e.Reason
	}
	if reasons["U01"] != "terminal offline" || reasons["U02"] == "" {
		t.Fatalf("exclusions %v", reasons)
	}
}

// TestStaleByReceiveTime: freshness is when the server received a fix,
// not what the terminal's clock said; a clock 5 minutes slow is shown,
// not held against the unit.
func TestStaleByReceiveTime(t *testing.T) {
	f := newFixture(t, 1)
	now := f.clock.Now()
	fix := telemetry.Fix{Unit: "U01", Seq: 1, Time: now.Add(-5 * time.Minute), Lat: centre.Lat(), Lon: centre.Lon(), Received: now}
	if err := f.svc.Positions(context.Background(), telemetry.Positions{Unit: "U01", Fixes: []telemetry.Fix{fix}, Latest: &fix,
		Clock: telemetry.Clock{Offset: -5 * time.Minute, Known: true}}); err != nil {
		t.Fatal(err)
	}
	u, _ := f.svc.Unit(dispatch.System, "U01")
	if u.Stale || u.ClockOffsetS != -300 || !u.ClockSuspect {
		t.Fatalf("unit stale %v, clock %vs suspect %v: want fresh, -300s, suspect", u.Stale, u.ClockOffsetS, u.ClockSuspect)
	}
	if _, recs := f.call(t, centre); len(recs.Candidates) != 1 {
		t.Fatalf("candidates %+v, excluded %+v: want U01", recs.Candidates, recs.Excluded)
	}
	f.clock.Add(2 * time.Minute)
	if u, _ := f.svc.Unit(dispatch.System, "U01"); !u.Stale {
		t.Fatal("a fix received 2 minutes ago is not stale")
	}
	// All of a message's fixes dropped: the clock is still told.
	if err := f.svc.Positions(context.Background(), telemetry.Positions{Unit: "U01", Clock: telemetry.Clock{Offset: 20 * time.Minute, Known: true}}); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.svc.Unit(dispatch.System, "U01"); u.ClockOffsetS != 1200 || u.Position.Seq != 1 {
		t.Fatalf("clock %vs, seq %d: want 1200s, position kept", u.ClockOffsetS, u.Position.Seq)
	}
}

func TestBusDropsSlowSubscriber(t *testing.T) {
	b := dispatch.NewBus()
	slow, fast := b.Subscribe(2), b.Subscribe(100)
	for range 10 {
		b.Publish(dispatch.Event{Type: dispatch.EventUnit})
	}
	n := 0
	for range slow.C {
		n++
	}
	if !slow.Dropped() || n != 2 {
		t.Fatalf("slow: dropped=%v got %d events, want dropped after 2", slow.Dropped(), n)
	}
	if len(fast.C) != 10 {
		t.Fatalf("fast got %d events, want 10", len(fast.C))
	}
	fast.Close()
	fast.Close()
}

func TestAreaLocateAndWithin(t *testing.T) {
	a := testArea(t, 0)
	tests := []struct {
		name     string
		p        orb.Point
		wantJur  string
		wantZone geo.Zone
		wantOK   bool
	}{
		{"county seat is urban", centre, countyID, geo.Urban, true},
		{"county outskirts are rural", orb.Point{centre[0] + 0.1, centre[1]}, countyID, geo.Rural, true},
		{"neighbour county", orb.Point{105.5, 29.2}, "510302", geo.Rural, true},
		{"nowhere", orb.Point{100, 20}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, z, ok := a.Locate(tt.p)
			if j.ID != tt.wantJur || z != tt.wantZone || ok != tt.wantOK {
				t.Fatalf("Locate = %s %s %v, want %s %s %v", j.ID, z, ok, tt.wantJur, tt.wantZone, tt.wantOK)
			}
		})
	}
	if !a.Within(countyID, cityID) || a.Within(cityID, countyID) || a.Within("510302", countyID) {
		t.Fatal("Within: a county is within its city, not the other way round, nor within a neighbour")
	}
}

// TestRestore builds a second service on the first one's record, as a
// restart does: statuses (out of service included), assignments and
// positions come back.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	store, tracks := memory.NewStore(), memory.NewTracks(100)
	clock := dispatchtest.NewClock(clock0)
	newSvc := func() *dispatch.Service {
		svc, err := dispatch.NewService(ctx, dispatch.Config{Area: testArea(t, 3), Store: store, Tracks: tracks, Events: dispatch.NewBus(), Now: clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := newSvc()
	rec := telemetry.Recorder{History: tracks, Next: svc}
	for i, id := range []string{"U01", "U02", "U03"} {
		fix := telemetry.Fix{Unit: id, Seq: 1, Time: clock.Now(), Lat: centre.Lat() + float64(i)*0.01, Lon: centre.Lon(), Received: clock.Now()}
		if err := rec.Positions(ctx, telemetry.Positions{Unit: id, Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
			t.Fatal(err)
		}
	}
	inc, _, _, err := svc.CreateIncident(ctx, dispatch.System, dispatch.NewIncident{Location: dispatch.LatLon{Lat: centre.Lat(), Lon: centre.Lon()}, Priority: 1, Category: dispatch.CatStroke})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	for unit, status := range map[string]string{"U01": "on_scene", "U02": "out_of_service"} {
		if err := svc.Status(ctx, telemetry.Status{Unit: unit, Time: clock.Now(), Status: status}); err != nil {
			t.Fatal(err)
		}
	}

	again := newSvc()
	want := map[string]dispatch.UnitStatus{"U01": dispatch.OnScene, "U02": dispatch.OutOfService, "U03": dispatch.Available}
	for unit, status := range want {
		u, _ := again.Unit(dispatch.System, unit)
		if u.Status != status || u.Position == nil {
			t.Errorf("%s after restart: status %s position %v, want %s with a position", unit, u.Status, u.Position, status)
		}
	}
	if u, _ := again.Unit(dispatch.System, "U01"); u.Incident != inc.ID {
		t.Errorf("U01 lost its incident: %q", u.Incident)
	}
	// A status press older than the restored one is still ignored.
	_ = again.Status(ctx, telemetry.Status{Unit: "U01", Time: clock0, Status: "en_route"})
	if u, _ := again.Unit(dispatch.System, "U01"); u.Status != dispatch.OnScene {
		t.Errorf("a stale press after restart moved U01 to %s", u.Status)
	}
	// Restored units are offline until their terminal reconnects; then the
	// restored position is in the index and U03 is recommended.
	call := dispatch.NewIncident{Location: dispatch.LatLon{Lat: centre.Lat(), Lon: centre.Lon()}, Priority: 2, Category: dispatch.CatOther}
	if _, recs, _, _ := again.CreateIncident(ctx, dispatch.System, call); len(recs.Candidates) != 0 {
		t.Errorf("offline restored units were recommended: %+v", recs.Candidates)
	}
	_ = again.Presence(ctx, telemetry.Presence{Unit: "U03", Online: true, Time: clock.Now()})
	if _, recs, _, _ := again.CreateIncident(ctx, dispatch.System, call); len(recs.Candidates) != 1 || recs.Candidates[0].Unit != "U03" {
		t.Errorf("candidates after U03 reconnected: %+v, want U03 from its restored position", recs.Candidates)
	}
}

func mustUnits(tb testing.TB, svc *dispatch.Service) []dispatch.UnitState {
	tb.Helper()
	us, err := svc.Units(dispatch.System, "")
	if err != nil {
		tb.Fatal(err)
	}
	return us
}

// Principals of the access rules tests: the test area is a city with two
// counties, countyID (units U01, U02) and neighbourID (unit N01).
const neighbourID = "510302"

var (
	dispA  = dispatch.Principal{Name: "disp-a", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}
	dispB  = dispatch.Principal{Name: "disp-b", Role: dispatch.RoleDispatcher, Jurisdiction: neighbourID}
	cityP  = dispatch.Principal{Name: "city", Role: dispatch.RoleCity, Jurisdiction: cityID}
	integA = dispatch.Principal{Name: "integ-a", Role: dispatch.RoleIntegrator, Jurisdiction: countyID}
	adminP = dispatch.Principal{Name: "root", Role: dispatch.RoleAdmin}
	nobody = dispatch.Principal{Name: "nobody"}
)

// twoCounties is a fixture with units in both counties and one open
// incident in each.
type twoCounties struct {
	*fixture
	incA, incB *dispatch.Incident
}

func newTwoCounties(tb testing.TB, cfg func(*dispatch.Config)) *twoCounties {
	tb.Helper()
	a := testArea(tb, 2)
	neighbour := orb.Point{105.5, 29.2}
	a.Stations = append(a.Stations, dispatch.Station{ID: "S2", Name: "neighbour station", Jurisdiction: neighbourID, Location: neighbour})
	a.Units = append(a.Units, dispatch.Unit{ID: "N01", Callsign: "N01", Station: "S2", Jurisdiction: neighbourID, Capabilities: []string{dispatch.ALS}})
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	f := fixtureOn(tb, a, cfg)
	f.move(tb, "U01", centre)
	f.move(tb, "U02", orb.Point{centre[0] + 0.01, centre[1]})
	f.move(tb, "N01", neighbour)
	tc := &twoCounties{fixture: f}
	tc.incA, _ = f.call(tb, centre)
	tc.incB, _ = f.call(tb, neighbour)
	if tc.incA.Jurisdiction != countyID || tc.incB.Jurisdiction != neighbourID {
		tb.Fatalf("incidents located in %s and %s", tc.incA.Jurisdiction, tc.incB.Jurisdiction)
	}
	return tc
}

// TestAccessRules checks every role against every action, inside and
// outside its jurisdiction.
func TestAccessRules(t *testing.T) {
	ctx := context.Background()
	newCall := func(p orb.Point) dispatch.NewIncident {
		return dispatch.NewIncident{Location: dispatch.LatLon{Lat: p.Lat(), Lon: p.Lon()}, Priority: 2, Category: dispatch.CatOther}
	}
	type action struct {
		name string
		do   func(f *twoCounties, by dispatch.Principal) error
	}
	actions := map[string]action{
		"create/own": {"create incident/in county A", func(f *twoCounties, by dispatch.Principal) error {
			_, _, _, err := f.svc.CreateIncident(ctx, by, newCall(centre))
			return err
		}},
		"create/B": {"create incident/in county B", func(f *twoCounties, by dispatch.Principal) error {
			_, _, _, err := f.svc.CreateIncident(ctx, by, newCall(orb.Point{105.5, 29.2}))
			return err
		}},
		"read/own": {"read incident/in county A", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Incident(ctx, by, f.incA.ID)
			return err
		}},
		"read/B": {"read incident/in county B", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Incident(ctx, by, f.incB.ID)
			return err
		}},
		"recs/own": {"recommend/in county A", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Recommend(ctx, by, f.incA.ID)
			return err
		}},
		"recs/B": {"recommend/in county B", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Recommend(ctx, by, f.incB.ID)
			return err
		}},
		"asgs/B": {"assignments/in county B", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Assignments(ctx, by, f.incB.ID)
			return err
		}},
		"trans/B": {"transitions/in county B", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Transitions(ctx, by, f.incB.ID)
			return err
		}},
		"list/own": {"list incidents/scope county A", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Incidents(ctx, by, dispatch.IncidentFilter{Scope: countyID})
			return err
		}},
		"list/B": {"list incidents/scope county B", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Incidents(ctx, by, dispatch.IncidentFilter{Scope: neighbourID})
			return err
		}},
		"units/B":  {"list units/scope county B", func(f *twoCounties, by dispatch.Principal) error { _, err := f.svc.Units(by, neighbourID); return err }},
		"unit/own": {"read unit/in county A", func(f *twoCounties, by dispatch.Principal) error { _, err := f.svc.Unit(by, "U01"); return err }},
		"unit/B":   {"read unit/in county B", func(f *twoCounties, by dispatch.Principal) error { _, err := f.svc.Unit(by, "N01"); return err }},
		"track/B": {"track/in county B", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Track(ctx, by, telemetry.TrackQuery{Unit: "N01", From: clock0.Add(-time.Hour), To: clock0, Limit: 10}, func(telemetry.Fix) error { return nil })
			return err
		}},
		"assign/own": {"assign/county A unit to county A call", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Assign(ctx, by, f.incA.ID, "U01")
			return err
		}},
		"assign/lend": {"assign/county B unit to county A call", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Assign(ctx, by, f.incA.ID, "N01")
			return err
		}},
		"assign/B": {"assign/county B unit to county B call", func(f *twoCounties, by dispatch.Principal) error {
			_, err := f.svc.Assign(ctx, by, f.incB.ID, "N01")
			return err
		}},
	}
	const ok, no = "", dispatch.CodeForbidden
	roles := []struct {
		name string
		by   dispatch.Principal
		want map[string]string
	}{
		{"dispatcher", dispA, map[string]string{
			"create/own": ok, "create/B": no, "read/own": ok, "read/B": no, "recs/own": ok, "recs/B": no, "asgs/B": no, "trans/B": no,
			"list/own": ok, "list/B": no, "units/B": no, "unit/own": ok, "unit/B": no, "track/B": no,
			"assign/own": ok, "assign/lend": no, "assign/B": no,
		}},
		{"city", cityP, map[string]string{
			"create/own": ok, "create/B": ok, "read/own": ok, "read/B": ok, "recs/own": ok, "recs/B": ok, "asgs/B": ok, "trans/B": ok,
			"list/own": ok, "list/B": ok, "units/B": ok, "unit/own": ok, "unit/B": ok, "track/B": ok,
			"assign/own": ok, "assign/lend": ok, "assign/B": ok,
		}},
		{"integrator", integA, map[string]string{
			"create/own": ok, "create/B": no, "read/own": ok, "read/B": no, "recs/own": ok, "recs/B": no, "asgs/B": no, "trans/B": no,
			"list/own": ok, "list/B": no, "units/B": no, "unit/own": ok, "unit/B": no, "track/B": no,
			"assign/own": no, "assign/lend": no, "assign/B": no,
		}},
		{"admin", adminP, map[string]string{
			"create/own": ok, "create/B": ok, "read/own": ok, "read/B": ok, "recs/own": ok, "recs/B": ok, "asgs/B": ok, "trans/B": ok,
			"list/own": ok, "list/B": ok, "units/B": ok, "unit/own": ok, "unit/B": ok, "track/B": ok,
			"assign/own": ok, "assign/lend": ok, "assign/B": ok,
		}},
		{"no role", nobody, map[string]string{
			"create/own": no, "create/B": no, "read/own": no, "read/B": no, "recs/own": no, "recs/B": no, "asgs/B": no, "trans/B": no,
			"list/own": no, "list/B": no, "units/B": no, "unit/own": no, "unit/B": no, "track/B": no,
			"assign/own": no, "assign/lend": no, "assign/B": no,
		}},
	}
	for _, r := range roles {
		if len(r.want) != len(actions) {
			t.Fatalf("%s: %d expectations for %d actions", r.name, len(r.want), len(actions))
		}
		for key, want := range r.want {
			a := actions[key]
			t.Run(r.name+"/"+a.name, func(t *testing.T) {
				f := newTwoCounties(t, nil)
				before, _ := f.svc.Incidents(ctx, dispatch.System, dispatch.IncidentFilter{})
				err := a.do(f, r.by)
				if got := codeOf(err); got != want {
					t.Fatalf("err = %v, want code %q", err, want)
				}
				if err == nil {
					return
				}
				// A refusal changes nothing.
				after, _ := f.svc.Incidents(ctx, dispatch.System, dispatch.IncidentFilter{})
				active, _ := f.svc.ActiveAssignments(ctx, dispatch.System)
				if len(after) != len(before) || len(active) != 0 || len(f.cmds.sent) != 0 {
					t.Fatalf("refused %s changed the record: incidents %d -> %d, active assignments %d, commands %d", key, len(before), len(after), len(active), len(f.cmds.sent))
				}
				if key == "assign/lend" && r.by.Role == dispatch.RoleDispatcher && !strings.Contains(dispatch.ErrorMessage(err), "consent") {
					t.Errorf("message %q does not say the owning county's consent is needed", dispatch.ErrorMessage(err))
				}
			})
		}
	}
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return dispatch.ErrorCode(err)
}

// TestAccessScope checks what each role sees in lists.
func TestAccessScope(t *testing.T) {
	ctx := context.Background()
	f := newTwoCounties(t, nil)
	if _, err := f.svc.Assign(ctx, adminP, f.incB.ID, "N01"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                      string
		by                        dispatch.Principal
		scope                     string
		incidents, units, actives int
	}{
		{"dispatcher sees its county", dispA, "", 1, 2, 0},
		{"other county's dispatcher sees its county", dispB, "", 1, 1, 1},
		{"city sees both counties", cityP, "", 2, 3, 1},
		{"city narrowed to one county (assignments are not narrowed)", cityP, countyID, 1, 2, 1},
		{"integrator sees its county", integA, "", 1, 2, 0},
		{"admin sees everything", adminP, "", 2, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			incs, err := f.svc.Incidents(ctx, tt.by, dispatch.IncidentFilter{Scope: tt.scope})
			if err != nil {
				t.Fatal(err)
			}
			units, err := f.svc.Units(tt.by, tt.scope)
			if err != nil {
				t.Fatal(err)
			}
			active, err := f.svc.ActiveAssignments(ctx, tt.by)
			if err != nil {
				t.Fatal(err)
			}
			if len(incs) != tt.incidents || len(units) != tt.units || len(active) != tt.actives {
				t.Fatalf("incidents %d units %d active assignments %d, want %d %d %d", len(incs), len(units), len(active), tt.incidents, tt.units, tt.actives)
			}
		})
	}
	if _, err := f.svc.Scope(dispA, "999999"); !errors.Is(err, dispatch.ErrInvalid) {
		t.Errorf("unknown jurisdiction: %v, want invalid", err)
	}
}

// TestAssignAudited checks that assignments are recorded under the
// principal's name and a refused one as acl_denied.
func TestAssignAudited(t *testing.T) {
	ctx := context.Background()
	audit := memory.NewAudit()
	f := newTwoCounties(t, func(c *dispatch.Config) { c.Auditor = audit })
	if _, err := f.svc.Assign(ctx, dispA, f.incA.ID, "N01"); err == nil {
		t.Fatal("a county dispatcher sent another county's unit")
	}
	a, err := f.svc.Assign(ctx, dispA, f.incA.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if a.By != dispA.Name {
		t.Errorf("assignment by %q, want %q", a.By, dispA.Name)
	}
	log, err := audit.AuditLog(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Actor+" "+e.Action+" "+e.Subject)
	}
	want := []string{
		"system incident_create " + f.incA.ID,
		"system incident_create " + f.incB.ID,
		"disp-a acl_denied " + f.incA.ID,
		"disp-a assign " + f.incA.ID,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log:\n%q\nwant\n%q", got, want)
	}
	if err := dispatch.VerifyAudit(log); err != nil {
		t.Fatal(err)
	}
}
