package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

func TestPercentile(t *testing.T) {
	seq := func(n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = float64(i + 1)
		}
		return out
	}
	tests := []struct {
		name     string
		sorted   []float64
		p50, p90 float64
	}{
		{"one", []float64{7}, 7, 7},
		{"two", []float64{1, 2}, 1, 2},
		{"ten", seq(10), 5, 9},
		{"eleven", seq(11), 6, 10},
		{"hundred", seq(100), 50, 90},
		{"ties", []float64{3, 3, 3, 8}, 3, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dispatch.Percentile(tt.sorted, 50); got != tt.p50 {
				t.Errorf("p50 = %v, want %v", got, tt.p50)
			}
			if got := dispatch.Percentile(tt.sorted, 90); got != tt.p90 {
				t.Errorf("p90 = %v, want %v", got, tt.p90)
			}
		})
	}
}

// east is p moved km kilometres east.
func east(p orb.Point, km float64) orb.Point {
	return orb.Point{p[0] + km/(111.195*0.8729), p[1]} // cos 29.2°
}

// TestSatisfactionAtIntake: a call records, when it comes, whether an
// available unit was inside its base radius: one of its own county, one
// of another county of the city (linkage), or none, and why.
func TestSatisfactionAtIntake(t *testing.T) {
	ctx := context.Background()
	rural := orb.Point{centre[0] + 0.15, centre[1] - 0.15}
	tests := []struct {
		name   string
		call   orb.Point
		setup  func(f *fixture, call orb.Point)
		want   dispatch.Satisfaction
		reason []string
	}{
		{"own unit at 4 km in town", centre, func(f *fixture, p orb.Point) { f.move(t, "U01", east(p, 4)) }, dispatch.SatisfiedOwn, nil},
		{"own unit at 6 km in town", centre, func(f *fixture, p orb.Point) { f.move(t, "U01", east(p, 6)) },
			dispatch.Unsatisfied, []string{"no available unit of county (510322) within the urban 5 km radius", "nearest available U01 at 6.0 km"}},
		{"own unit at 12 km in the country: the base radius is 10 km", rural, func(f *fixture, p orb.Point) { f.move(t, "U01", east(p, -12)) },
			dispatch.Unsatisfied, []string{"rural 10 km radius", "nearest available U01 at 12.0 km"}},
		{"the one inside is busy, the one outside free", centre, func(f *fixture, p orb.Point) {
			f.move(t, "U01", east(p, 1))
			f.move(t, "U02", east(p, 8))
			inc, _ := f.call(t, east(p, 1))
			if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
				t.Fatal(err)
			}
		}, dispatch.Unsatisfied, []string{"(inside it: 1 busy)", "nearest available U02 at 8.0 km"}},
		{"offline, stale and out of service inside", centre, func(f *fixture, p orb.Point) {
			f.move(t, "U01", east(p, 1))
			f.move(t, "U03", east(p, 3))
			f.clock.Add(2 * time.Minute)
			f.move(t, "U02", east(p, 2))
			f.mustPress(t, "U02", "out_of_service")
			f.move(t, "U04", east(p, 4))
			if err := f.svc.Presence(ctx, telemetry.Presence{Unit: "U04", Online: false, Time: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}, dispatch.Unsatisfied, []string{"(inside it: 1 out of service, 1 offline, 2 stale)", "no available unit in city (510300)"}},
		{"only the neighbour's unit inside", rural, func(f *fixture, p orb.Point) {
			f.move(t, "N01", east(p, 3))
			f.move(t, "U01", east(p, -15))
		}, dispatch.SatisfiedLinked, []string{"rural 10 km radius", "linkage: N01 of neighbour (510302) at 3.0 km"}},
		{"own unit inside and the neighbour's nearer", rural, func(f *fixture, p orb.Point) {
			f.move(t, "N01", east(p, 1))
			f.move(t, "U01", east(p, 9))
		}, dispatch.SatisfiedOwn, nil},
		{"a unit of another city never counts", rural, func(f *fixture, p orb.Point) { f.move(t, "X01", east(p, 1)) },
			dispatch.Unsatisfied, []string{"no available unit in city (510300)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, 4, func(c *dispatch.Config) {
				c.Area.Jurisdictions = append(c.Area.Jurisdictions, dispatch.Jurisdiction{ID: "520100", Name: "other city"})
				c.Area.Units = append(c.Area.Units,
					dispatch.Unit{ID: "N01", Callsign: "N1", Jurisdiction: "510302"},
					dispatch.Unit{ID: "X01", Callsign: "X1", Jurisdiction: "520100"})
			})
			tt.setup(f, tt.call)
			inc, _ := f.call(t, tt.call)
			if inc.Satisfaction != tt.want {
				t.Fatalf("satisfaction %q (%s), want %q", inc.Satisfaction, inc.SatisfactionReason, tt.want)
			}
			if (tt.reason == nil) != (inc.SatisfactionReason == "") {
				t.Fatalf("reason %q", inc.SatisfactionReason)
			}
			for _, want := range tt.reason {
				if !strings.Contains(inc.SatisfactionReason, want) {
					t.Errorf("reason %q lacks %q", inc.SatisfactionReason, want)
				}
			}
		})
	}
}

// TestKPIsRequest: the period and scope of a KPI request.
func TestKPIsRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 1)
	f.move(t, "U01", centre)
	f.call(t, centre)
	f.clock.Add(time.Second) // the period ends before now: [from, to)
	now := f.clock.Now()
	disp := dispatch.Principal{Name: "d", Role: dispatch.RoleDispatcher, Jurisdiction: countyID}
	k, err := f.svc.KPIs(ctx, disp, "", time.Time{}, time.Time{})
	if err != nil || k.Jurisdiction != countyID || !k.To.Equal(now) || !k.From.Equal(now.Add(-24*time.Hour)) || k.Calls != 1 {
		t.Fatalf("default KPIs %+v, %v", k, err)
	}
	if *k.Satisfaction.Rate != 1 || k.Satisfaction.Target != 0.95 || k.OnScene.Pending != 1 || k.OnScene.Rate != nil || k.Stages.Dispatch.N != 0 || k.Stages.Dispatch.P50 != nil {
		t.Fatalf("one call just taken: %+v", k)
	}
	tests := []struct {
		name     string
		by       dispatch.Principal
		jur      string
		from, to time.Time
		code     string
	}{
		{"from after to", disp, "", now, now.Add(-time.Hour), dispatch.CodeInvalid},
		{"from equals to", disp, "", now, now, dispatch.CodeInvalid},
		{"over 92 days", disp, "", now.Add(-93 * 24 * time.Hour), now, dispatch.CodeInvalid},
		{"another county", disp, "510302", time.Time{}, time.Time{}, dispatch.CodeForbidden},
		{"not in the area", disp, "999999", time.Time{}, time.Time{}, dispatch.CodeInvalid},
		{"no jurisdiction", dispatch.Principal{Name: "x", Role: dispatch.RoleDispatcher}, "", time.Time{}, time.Time{}, dispatch.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.KPIs(ctx, tt.by, tt.jur, tt.from, tt.to)
			if got := dispatch.ErrorCode(err); got != tt.code {
				t.Fatalf("error %v, want %s", err, tt.code)
			}
		})
	}
	if k, err := f.svc.KPIs(ctx, dispatch.Principal{Name: "n", Role: dispatch.RoleDispatcher, Jurisdiction: "510302"}, "", time.Time{}, time.Time{}); err != nil || k.Calls != 0 || k.Satisfaction.Rate != nil {
		t.Fatalf("the neighbour's KPIs %+v, %v", k, err)
	}
}

// kpis collects the kpi messages of a bus.
type kpis struct {
	mu  sync.Mutex
	got map[string][]*dispatch.KPIs
}

func (k *kpis) of(jur string) []*dispatch.KPIs {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*dispatch.KPIs(nil), k.got[jur]...)
}

func collectKPIs(t *testing.T, bus *dispatch.Bus) *kpis {
	k := &kpis{got: map[string][]*dispatch.KPIs{}}
	sub := bus.Subscribe(1 << 14)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.C {
			if e.Type == dispatch.EventKPI {
				if e.KPI.Jurisdiction != e.Jurisdiction {
					t.Errorf("kpi of %s scoped to %s", e.KPI.Jurisdiction, e.Jurisdiction)
				}
				k.mu.Lock()
				k.got[e.Jurisdiction] = append(k.got[e.Jurisdiction], e.KPI)
				k.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { sub.Close(); <-done })
	return k
}

// TestKPIFeed: the feed publishes each jurisdiction's KPIs and coverage
// at start, again for the county and its city (not the neighbour) when a
// call changes them, at most once a round however many calls came, again
// when the coverage changes, never when nothing changed; and it stops
// with its context.
func TestKPIFeed(t *testing.T) {
	f := newFixture(t, 2)
	got := collectKPIs(t, f.bus)
	ctx, cancel := context.WithCancel(context.Background())
	every := 100 * time.Millisecond
	feed := dispatch.NewKPIFeed(f.svc, dispatch.KPIFeedConfig{Events: f.bus, Every: every, Refresh: time.Hour})
	done := make(chan error, 1)
	go func() { done <- feed.Run(ctx) }()

	for _, jur := range []string{cityID, countyID, "510302"} {
		waitUntil(t, "the first kpi of "+jur, func() bool { return len(got.of(jur)) == 1 })
	}
	if k := got.of(countyID)[0]; k.Calls != 0 || k.Coverage == nil || k.Coverage.Cells == 0 || k.Coverage.Covered != 0 {
		t.Fatalf("first kpi of the county: %+v coverage %+v", k, k.Coverage)
	}
	f.move(t, "U01", centre)
	waitUntil(t, "the coverage in a kpi", func() bool {
		ks := got.of(countyID)
		return len(ks) == 2 && ks[1].Coverage.Covered > 0
	})
	if n := len(got.of("510302")); n != 1 {
		t.Fatalf("the neighbour got %d kpi messages, want 1: its coverage did not change", n)
	}
	start := time.Now()
	for range 10 {
		f.call(t, centre)
	}
	f.clock.Add(time.Second)
	waitUntil(t, "ten calls in a kpi", func() bool {
		ks := got.of(countyID)
		return ks[len(ks)-1].Calls == 10
	})
	rounds := int(time.Since(start)/every) + 1
	if n := len(got.of(countyID)) - 2; n > rounds {
		t.Fatalf("%d kpi messages for ten calls in %d rounds: at most one a round", n, rounds)
	}
	if k := got.of(cityID); k[len(k)-1].Calls != 10 {
		t.Fatalf("the city's last kpi: %+v", k[len(k)-1])
	}
	if n := len(got.of("510302")); n != 1 {
		t.Fatalf("the neighbour got %d kpi messages, want 1", n)
	}
	before := len(got.of(countyID))
	time.Sleep(4 * every)
	if n := len(got.of(countyID)); n != before {
		t.Fatalf("%d kpi messages while nothing changed", n-before)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestLedgerMisses: the misses are listed newest first, bounded, and
// counted whole.
func TestLedgerMisses(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var recs []dispatch.CallRecord
	for i := range 1200 {
		recs = append(recs, dispatch.CallRecord{Incident: fmt.Sprintf("INC-%04d", i), Priority: 2, Status: dispatch.IncidentOpen,
			Satisfaction: dispatch.Unsatisfied, SatisfactionReason: "far", CreatedAt: t0.Add(time.Duration(i) * time.Minute)})
	}
	k := dispatch.Ledger(recs, t0.Add(48*time.Hour))
	if k.Satisfaction.Missed != 1200 || len(k.Satisfaction.Misses) != 1000 || k.Satisfaction.Misses[0].Incident != "INC-1199" || *k.Satisfaction.Rate != 0 {
		t.Fatalf("misses: %d counted, %d listed, first %+v", k.Satisfaction.Missed, len(k.Satisfaction.Misses), k.Satisfaction.Misses[0])
	}
}
