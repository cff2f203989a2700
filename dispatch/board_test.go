package dispatch_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// incidentCounter counts the reads of one incident that reach the record.
type incidentCounter struct {
	dispatch.Store
	reads atomic.Int64
}

func (s *incidentCounter) Incident(ctx context.Context, id string) (*dispatch.Incident, error) {
	s.reads.Add(1)
	return s.Store.Incident(ctx, id)
}

// TestBoard: a call in play is read from memory, as it was last stored,
// when it is taken, after each decision and after a restart; a call that
// ended is read from the record.
func TestBoard(t *testing.T) {
	ctx := context.Background()
	store := &incidentCounter{Store: memory.NewStore()}
	f := newFixtureWith(t, 2, func(c *dispatch.Config) { c.Store = store })
	f.move(t, "U01", centre)
	f.move(t, "U02", centre)
	inc, _ := f.call(t, centre)
	later, _ := f.call(t, centre)

	// same reads inc through the service and checks it is the record's,
	// and whether reading it reached the record.
	same := func(tb testing.TB, svc *dispatch.Service, id string, fromRecord bool) *dispatch.Incident {
		tb.Helper()
		before := store.reads.Load()
		got, err := svc.Incident(ctx, dispatch.System, id)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := svc.Recommend(ctx, dispatch.System, id); err != nil {
			tb.Fatal(err)
		}
		if read := store.reads.Load() != before; read != fromRecord {
			tb.Fatalf("reading %s reached the record: %v, want %v", id, read, fromRecord)
		}
		want, _ := store.Store.Incident(ctx, id)
		if *got != *want {
			tb.Fatalf("read %+v\nrecord %+v", got, want)
		}
		return got
	}
	same(t, f.svc, inc.ID, false)
	if _, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}
	if got := same(t, f.svc, inc.ID, false); got.Status != dispatch.IncidentAssigned || got.Version != 2 {
		t.Fatalf("after the assignment: %s v%d, want assigned v2", got.Status, got.Version)
	}

	restarted, err := dispatch.NewService(ctx, dispatch.Config{Area: f.area, Store: store, Events: dispatch.NewBus(), Now: f.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	same(t, restarted, inc.ID, false)
	same(t, restarted, later.ID, false)

	if _, err := f.svc.EndIncident(ctx, dispatch.System, later.ID, dispatch.IncidentCancelled, "test call"); err != nil {
		t.Fatal(err)
	}
	if got := same(t, f.svc, later.ID, true); got.Status != dispatch.IncidentCancelled {
		t.Fatalf("the cancelled call reads %s", got.Status)
	}
	if _, err := f.svc.Incident(ctx, dispatch.System, "INC-none"); dispatch.ErrorCode(err) != dispatch.CodeNotFound {
		t.Fatalf("an unknown call: %v, want not found", err)
	}
}

// TestBoardOtherServer: a server whose board holds a call that another
// server has since ended learns it from the record when it decides on
// the call, and reads it from the record from then on.
func TestBoardOtherServer(t *testing.T) {
	ctx := context.Background()
	store := memory.NewStore()
	f := newFixtureWith(t, 2, func(c *dispatch.Config) { c.Store = store })
	f.move(t, "U01", centre)
	inc, _ := f.call(t, centre)
	other, err := dispatch.NewService(ctx, dispatch.Config{Area: f.area, Store: store, Events: dispatch.NewBus(), Now: f.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EndIncident(ctx, dispatch.System, inc.ID, dispatch.IncidentCancelled, "hoax"); err != nil {
		t.Fatal(err)
	}
	// The other server's board still shows the call open (as its
	// picture would show a unit) ...
	if got, _ := other.Incident(ctx, dispatch.System, inc.ID); got.Status != dispatch.IncidentOpen {
		t.Fatalf("the other server reads %s before deciding", got.Status)
	}
	// ... until it decides on it: the record refuses the stale version,
	// and the decision is made again from the record.
	fix := telemetry.Fix{Unit: "U01", Seq: 1, Time: f.clock.Now(), Lat: centre.Lat(), Lon: centre.Lon(), Received: f.clock.Now()}
	if err := other.Positions(ctx, telemetry.Positions{Unit: "U01", Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
		t.Fatal(err)
	}
	_, err = other.Assign(ctx, dispatch.System, inc.ID, "U01")
	if dispatch.ErrorCode(err) != dispatch.CodeConflict || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("assigning a call cancelled elsewhere: %v, want a conflict saying it is cancelled", err)
	}
	if got, _ := other.Incident(ctx, dispatch.System, inc.ID); got.Status != dispatch.IncidentCancelled {
		t.Fatalf("the other server reads %s after deciding, want cancelled", got.Status)
	}
}
