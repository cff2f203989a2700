package dispatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// broker is a Commander that knows which terminals are connected, as the
// embedded broker does: a command to a terminal that is not goes nowhere.
type broker struct {
	mu   sync.Mutex
	up   map[string]bool
	got  []sentCommand // what reached a connected terminal
	sent int           // publishes
}

func newBroker() *broker { return &broker{up: map[string]bool{}} }

func (b *broker) Send(ctx context.Context, unit string, cmd telemetry.Command) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent++
	if b.up[unit] {
		b.got = append(b.got, sentCommand{unit, cmd})
	}
	return nil
}

func (b *broker) Reachable(unit string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up[unit]
}

func (b *broker) set(unit string, up bool) {
	b.mu.Lock()
	b.up[unit] = up
	b.mu.Unlock()
}

// received returns the command types that reached unit's terminal, in order.
func (b *broker) received(unit string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, s := range b.got {
		if s.unit == unit {
			out = append(out, s.cmd.Type+":"+s.cmd.Assignment)
		}
	}
	return out
}

type outboxFixture struct {
	*fixture
	store  *memory.Store
	broker *broker
}

func newOutboxFixture(t *testing.T) *outboxFixture {
	t.Helper()
	store, b := memory.NewStore(), newBroker()
	f := newFixtureWith(t, 2, func(c *dispatch.Config) { c.Store, c.Commands = store, b })
	f.move(t, "U01", centre)
	return &outboxFixture{fixture: f, store: store, broker: b}
}

func (f *outboxFixture) pending(t *testing.T) []dispatch.OutboxCommand {
	t.Helper()
	p, err := f.store.PendingCommands(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCommandWaitsForTheTerminal: an assign for a terminal that is not
// connected waits in the record and reaches it when it reconnects, also
// through a new engine on the same record (a restart); once the crew
// acknowledges it, it is settled and not sent again.
func TestCommandWaitsForTheTerminal(t *testing.T) {
	ctx := context.Background()
	f := newOutboxFixture(t)
	inc, _ := f.call(t, centre)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 0 {
		t.Fatalf("received %v while offline", got)
	}
	if p := f.pending(t); len(p) != 1 || p[0].Command.Type != telemetry.CommandAssign || p[0].Attempts != 1 || !p[0].SentAt.IsZero() {
		t.Fatalf("pending %+v, want the assign, tried once, not reached", p)
	}

	// A sweep while it is still offline sends nothing.
	f.clock.Add(time.Minute)
	if err := f.svc.Courier().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 0 {
		t.Fatalf("received %v while offline", got)
	}

	// The server restarts: a new engine on the same record.
	again, err := dispatch.NewService(ctx, dispatch.Config{Area: f.area, Store: f.store, Events: dispatch.NewBus(), Commands: f.broker, Now: f.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	f.broker.set("U01", true)
	if err := again.Courier().Redeliver(ctx, "U01"); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 1 || got[0] != "assign:"+a.ID {
		t.Fatalf("received %v after reconnecting, want the assign", got)
	}
	if p := f.pending(t); len(p) != 1 || p[0].SentAt.IsZero() {
		t.Fatalf("pending %+v, want the assign, reached, until answered", p)
	}

	// The terminal reconnects before acking: it gets the assign again.
	if err := again.Courier().Redeliver(ctx, "U01"); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 2 {
		t.Fatalf("received %v, want the assign twice", got)
	}
	if err := again.Ack(ctx, telemetry.Ack{Unit: "U01", Assignment: a.ID, Accepted: true, Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := again.Courier().Redeliver(ctx, "U01"); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 2 {
		t.Fatalf("received %v: an answered assign sent again", got)
	}
	if p := f.pending(t); len(p) != 0 {
		t.Fatalf("pending %+v after the ack, want none", p)
	}
}

// TestCancelSettledWhenReached: a cancel to a connected terminal is
// delivered at once; one to a disconnected terminal waits for it.
func TestCancelSettledWhenReached(t *testing.T) {
	ctx := context.Background()
	f := newOutboxFixture(t)
	f.broker.set("U01", true)
	inc, _ := f.call(t, centre)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Ack(ctx, telemetry.Ack{Unit: "U01", Assignment: a.ID, Accepted: true, Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.broker.set("U01", false)
	if _, err := f.svc.CancelAssignment(ctx, dispatch.System, inc.ID, a.ID, "not needed"); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 1 {
		t.Fatalf("received %v, want only the assign", got)
	}
	f.broker.set("U01", true)
	f.svc.Courier().Ready("U01") // no courier running: Redeliver does its work
	if err := f.svc.Courier().Redeliver(ctx, "U01"); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 2 || got[1] != "cancel:"+a.ID {
		t.Fatalf("received %v, want the cancel after reconnecting", got)
	}
	if p := f.pending(t); len(p) != 0 {
		t.Fatalf("pending %+v, want the cancel delivered and the assign settled", p)
	}
}

// TestUnheardCallExpires: a call assigned and cancelled while the
// terminal was away never reaches it, neither the assign nor the cancel.
func TestUnheardCallExpires(t *testing.T) {
	ctx := context.Background()
	f := newOutboxFixture(t)
	inc, _ := f.call(t, centre)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EndIncident(ctx, dispatch.System, inc.ID, dispatch.IncidentCancelled, "test call"); err != nil {
		t.Fatal(err)
	}
	f.broker.set("U01", true)
	if err := f.svc.Courier().Redeliver(ctx, "U01"); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 0 {
		t.Fatalf("received %v about a call it never heard of", got)
	}
	if p := f.pending(t); len(p) != 0 {
		t.Fatalf("pending %+v, want both expired", p)
	}
	_ = a
}

// TestSweepRetriesAndExpires: a command that could not be published (the
// broker was down) is sent by a sweep once the terminal is reachable; a
// command older than its lifetime expires unsent.
func TestSweepRetriesAndExpires(t *testing.T) {
	ctx := context.Background()
	store, b := memory.NewStore(), newBroker()
	down := &failingCommander{}
	clock := dispatchtest.NewClock(clock0)
	svc, err := dispatch.NewService(ctx, dispatch.Config{Area: testArea(t, 2), Store: store, Events: dispatch.NewBus(), Commands: down, Now: clock.Now, Logger: quiet, CommandTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{svc: svc, clock: clock, seq: map[string]uint64{}}
	f.move(t, "U01", centre)
	f.move(t, "U02", centre)
	inc, _ := f.call(t, centre)
	a1, err := svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	inc2, _ := f.call(t, centre)
	if _, err := svc.Assign(ctx, dispatch.System, inc2.ID, "U02"); err != nil {
		t.Fatal(err)
	}
	// The broker is back; U01's terminal is connected, U02's is not.
	down.ok(b)
	b.set("U01", true)
	clock.Add(time.Second)
	if err := svc.Courier().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.received("U01"); len(got) != 0 {
		t.Fatalf("a sweep raced the decision's own send: %v", got)
	}
	clock.Add(5 * time.Second)
	if err := svc.Courier().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.received("U01"); len(got) != 1 || got[0] != "assign:"+a1.ID {
		t.Fatalf("U01 received %v, want its assign", got)
	}
	if err := svc.Courier().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.received("U01"); len(got) != 1 {
		t.Fatalf("U01 received %v: a sweep sends a reached assign once", got)
	}
	clock.Add(time.Hour)
	if err := svc.Courier().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := store.PendingCommands(ctx, ""); len(p) != 0 {
		t.Fatalf("pending %+v after their lifetime, want none", p)
	}
	b.set("U02", true)
	if err := svc.Courier().Redeliver(ctx, "U02"); err != nil {
		t.Fatal(err)
	}
	if got := b.received("U02"); len(got) != 0 {
		t.Fatalf("U02 received %v past its lifetime", got)
	}
}

// failingCommander fails every send until ok hands it a working broker.
type failingCommander struct {
	mu sync.Mutex
	to *broker
}

func (c *failingCommander) ok(b *broker) { c.mu.Lock(); c.to = b; c.mu.Unlock() }

func (c *failingCommander) Send(ctx context.Context, unit string, cmd telemetry.Command) error {
	c.mu.Lock()
	to := c.to
	c.mu.Unlock()
	if to == nil {
		return context.DeadlineExceeded
	}
	return to.Send(ctx, unit, cmd)
}

func (c *failingCommander) Reachable(unit string) bool {
	c.mu.Lock()
	to := c.to
	c.mu.Unlock()
	return to != nil && to.Reachable(unit)
}

// TestRejectInTheOutbox: a refused press's reject goes through the outbox
// and is delivered to the connected terminal.
func TestRejectInTheOutbox(t *testing.T) {
	f := newOutboxFixture(t)
	f.broker.set("U01", true)
	if err := f.press(t, "U01", "on_scene"); err != nil {
		t.Fatal(err)
	}
	if got := f.broker.received("U01"); len(got) != 1 || got[0] != "reject:" {
		t.Fatalf("received %v, want a reject", got)
	}
	if p := f.pending(t); len(p) != 0 {
		t.Fatalf("pending %+v, want the reject delivered", p)
	}
}

// TestCourierRunRedeliversOnReady: the running courier sends a unit's
// pending commands when told its terminal is ready, and on an external
// broker an online report tells it.
func TestCourierRunRedeliversOnReady(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	store, b := memory.NewStore(), newBroker()
	f := newFixtureWith(t, 1, func(c *dispatch.Config) { c.Store, c.Commands, c.RedeliverOnOnline = store, b, true })
	f.move(t, "U01", centre)
	done := make(chan error, 1)
	go func() { done <- f.svc.Courier().Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	inc, _ := f.call(t, centre)
	a, err := f.svc.Assign(ctx, dispatch.System, inc.ID, "U01")
	if err != nil {
		t.Fatal(err)
	}
	b.set("U01", true)
	if err := f.svc.Presence(ctx, telemetry.Presence{Unit: "U01", Online: true, Time: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(b.received("U01")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no redelivery after the terminal came online")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := b.received("U01"); got[0] != "assign:"+a.ID {
		t.Fatalf("received %v", got)
	}
}
