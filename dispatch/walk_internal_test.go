package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// emptyRecord is a Store with nothing in it, enough to start a service;
// ranking must read nothing from it (any other call panics).
type emptyRecord struct{ Store }

func (emptyRecord) Incidents(context.Context, IncidentFilter) ([]*Incident, error) { return nil, nil }
func (emptyRecord) UnitRecords(context.Context) ([]UnitRecord, error)              { return nil, nil }

type noEvents struct{}

func (noEvents) Publish(Event) {}

// TestWalkAllocatesNothing: once its pooled state is warm, the walk over
// the picture that ranks a call allocates nothing; what allocates is the
// answer (the list and its reasons).
func TestWalkAllocatesNothing(t *testing.T) {
	centre := orb.Point{105.0, 29.2}
	a := &Area{
		Name: "walk",
		Jurisdictions: []Jurisdiction{
			{ID: "510300", Name: "city"},
			{ID: "510322", Name: "A", Parent: "510300", Region: dispatchtest.Region(t, "510322", dispatchtest.Square(centre, 0.2))},
			{ID: "510311", Name: "B", Parent: "510300", Region: dispatchtest.Region(t, "510311", dispatchtest.Square(orb.Point{105.4, 29.2}, 0.2))},
		},
		Zones: []UrbanZone{{ID: "Z", Name: "Z", Jurisdiction: "510322", Region: dispatchtest.Region(t, "Z", dispatchtest.Square(centre, 0.03))}},
	}
	for i := range 2000 {
		u := Unit{ID: fmt.Sprintf("U%04d", i), Callsign: "c", Jurisdiction: "510322", Capabilities: []string{BLS}}
		if i%2 == 0 {
			u.Jurisdiction = "510311"
		}
		if i%5 == 0 {
			u.Capabilities = []string{ALS}
		}
		a.Units = append(a.Units, u)
	}
	clock := dispatchtest.NewClock(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	s, err := NewService(context.Background(), Config{Area: a, Store: emptyRecord{}, Events: noEvents{}, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, u := range a.Units {
		p := orb.Point{104.8 + rng.Float64()*0.8, 29.0 + rng.Float64()*0.4}
		fix := telemetry.Fix{Unit: u.ID, Seq: 1, Time: clock.Now(), Lat: p.Lat(), Lon: p.Lon(), Received: clock.Now()}
		if err := s.Positions(context.Background(), telemetry.Positions{Unit: u.ID, Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
			t.Fatal(err)
		}
	}
	calls := []*Incident{
		{ID: "I1", Location: LatLon{Lat: 29.2, Lon: 105.0}, Priority: 1, Category: CatChestPain, Jurisdiction: "510322", Zone: geo.Urban},
		{ID: "I2", Location: LatLon{Lat: 29.35, Lon: 104.85}, Priority: 2, Category: CatNeonatal, Jurisdiction: "510322", Zone: geo.Rural},
		{ID: "I3", Location: LatLon{Lat: 29.1, Lon: 105.18}, Priority: 1, Category: CatTrauma, Jurisdiction: "510322", Zone: geo.Rural},
	}
	for _, inc := range calls {
		t.Run(inc.ID, func(t *testing.T) {
			walk := func() {
				r := rankers.Get().(*ranker)
				r.start(s, inc)
				s.pic.Nearby(r.loc, farthest, r.visit)
				r.release()
			}
			walk()
			if n := testing.AllocsPerRun(100, walk); n != 0 && !raceEnabled {
				t.Errorf("the walk allocates %v times a call, want 0", n)
			}
			if recs := s.rankFor(inc, System); len(recs.Candidates) == 0 {
				t.Errorf("no candidates: the walk found nothing to rank")
			}
		})
	}
}
