package dispatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// CommandState is where a command to a terminal is in the outbox.
type CommandState string

// Command states. MQTT has no receipt from the terminal itself, so
// delivered means: an assign was answered (the terminal acked it, or the
// crew pressed a status for it); a cancel or reject was published while
// the terminal was connected and subscribed (the broker then has it for
// the terminal's session). Until then a command is pending and is sent
// again whenever the terminal reconnects; terminals treat commands
// idempotently (one may arrive twice). A command that no longer means
// anything (an assign whose assignment ended unanswered, a command past
// its lifetime) expires unsent.
const (
	CommandPending   CommandState = "pending"
	CommandDelivered CommandState = "delivered"
	CommandExpired   CommandState = "expired"
)

// OutboxCommand is a command to a unit's terminal as the record keeps it
// until it is settled. A decision that causes a command stores it in the
// same Change, so that a decision is never kept without its command, nor
// a command without its decision.
type OutboxCommand struct {
	ID      string // CMD-...
	Seq     int64  // order of writing; the store gives it
	Unit    string
	Command telemetry.Command
	State   CommandState
	// Attempts counts the publishes.
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
	// SentAt is the last publish that reached a connected terminal; zero
	// while none has.
	SentAt    time.Time
	SettledAt time.Time // when it was delivered or expired
}

// Outbox is the record's side of the commands to terminals: new commands
// are inserted by Store.Apply (Change.Commands), the courier reads the
// pending ones and settles them.
type Outbox interface {
	// PendingCommands returns the pending commands to unit ("" for every
	// unit), in the order they were written.
	PendingCommands(ctx context.Context, unit string) ([]OutboxCommand, error)
	// UpdateCommand stores c's State, Attempts, SentAt and SettledAt. It
	// changes only a pending command: not found when there is no command
	// c.ID, a conflict when it is settled already (another server settled it).
	UpdateCommand(ctx context.Context, c OutboxCommand) error
}

// Courier delivers the outbox: it sends a unit's pending commands again
// when its terminal reconnects, retries commands that never reached a
// connected terminal, and settles or expires what is done. Decisions
// send their commands at once themselves; the courier is what makes them
// arrive after a terminal was offline or the server restarted.
type Courier struct {
	s     *Service
	every time.Duration

	mu    sync.Mutex
	ready map[string]bool // units whose terminals reconnected
	busy  map[string]bool // command ids being published by this process
	wake  chan struct{}
}

// DefaultCourierEvery is how often the courier sweeps the outbox.
const DefaultCourierEvery = 5 * time.Second

// retryAfter is how old a command must be before a sweep sends it: the
// decision that made it sends it first.
const retryAfter = 2 * time.Second

func newCourier(s *Service, every time.Duration) *Courier {
	if every <= 0 {
		every = DefaultCourierEvery
	}
	return &Courier{s: s, every: every, ready: map[string]bool{}, busy: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Courier returns the service's courier, whose Run delivers the outbox.
func (s *Service) Courier() *Courier { return s.courier }

// Ready tells the courier that unit's terminal can take commands again
// (it connected and subscribed). It never blocks: the broker calls it
// from its own goroutines.
func (c *Courier) Ready(unit string) {
	c.mu.Lock()
	c.ready[unit] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: a unit's pending commands as soon as its
// terminal is ready, and a sweep of the whole outbox every few seconds.
func (c *Courier) Run(ctx context.Context) error {
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
			c.mu.Lock()
			units := c.ready
			c.ready = map[string]bool{}
			c.mu.Unlock()
			for u := range units {
				if err := c.Redeliver(ctx, u); err != nil && ctx.Err() == nil {
					c.s.log.Error("outbox: redeliver", "unit", u, "err", err)
				}
			}
		case <-t.C:
			if err := c.Sweep(ctx); err != nil && ctx.Err() == nil {
				c.s.log.Error("outbox: sweep", "err", err)
			}
		}
	}
}

// Redeliver sends every pending command of unit again, oldest first,
// settling those that are done: its terminal has just reconnected and
// may have lost what it was sent before.
func (c *Courier) Redeliver(ctx context.Context, unit string) error {
	cmds, err := c.s.store.PendingCommands(ctx, unit)
	if err != nil {
		return err
	}
	c.pass(ctx, cmds, func(OutboxCommand) bool { return true })
	return nil
}

// Sweep settles what is done in the whole outbox and sends the commands
// that have not reached a connected terminal yet to the terminals that
// are reachable now.
func (c *Courier) Sweep(ctx context.Context) error {
	cmds, err := c.s.store.PendingCommands(ctx, "")
	if err != nil {
		return err
	}
	now := c.s.now()
	c.pass(ctx, cmds, func(o OutboxCommand) bool {
		return o.SentAt.IsZero() && now.Sub(o.CreatedAt) >= retryAfter && c.s.reachable(o.Unit)
	})
	return nil
}

// pass settles each of cmds (in the order written) or, while pending,
// publishes it when send says so.
func (c *Courier) pass(ctx context.Context, cmds []OutboxCommand, send func(OutboxCommand) bool) {
	unheard := map[string]bool{} // assignments whose assign expired before reaching the terminal
	for _, o := range cmds {
		state := c.settle(ctx, o, unheard)
		if state != CommandPending {
			c.finish(ctx, o, state)
			continue
		}
		if send(o) {
			c.s.publish(ctx, o)
		}
	}
}

// settle says whether o is still to be delivered. An assign is settled by
// its assignment: answered (delivered) or ended unanswered (expired). A
// cancel for an assignment whose assign never reached the terminal
// expires with it: the terminal never knew of the call.
func (c *Courier) settle(ctx context.Context, o OutboxCommand, unheard map[string]bool) CommandState {
	if !c.s.now().Before(o.ExpiresAt) {
		return CommandExpired
	}
	switch o.Command.Type {
	case telemetry.CommandAssign:
		a, err := c.s.store.Assignment(ctx, o.Command.Assignment)
		switch {
		case errors.Is(err, ErrNotFound):
			return CommandExpired
		case err != nil:
			c.s.log.Warn("outbox: assignment of a command", "command", o.ID, "err", err)
			return CommandPending
		}
		switch a.Status {
		case AssignOffered:
			return CommandPending
		case AssignCancelled:
			if o.SentAt.IsZero() {
				unheard[a.ID] = true
			}
			return CommandExpired
		}
		return CommandDelivered // answered: accepted, declined, or worked
	case telemetry.CommandCancel:
		if unheard[o.Command.Assignment] {
			return CommandExpired
		}
	}
	return CommandPending
}

// finish records that o is settled.
func (c *Courier) finish(ctx context.Context, o OutboxCommand, state CommandState) {
	o.State, o.SettledAt = state, c.s.now().UTC()
	if err := c.s.store.UpdateCommand(ctx, o); err != nil && !errors.Is(err, ErrConflict) {
		c.s.log.Warn("outbox: settle", "command", o.ID, "state", state, "err", err)
	}
}

// deliver publishes commands a decision has just stored.
func (s *Service) deliver(ctx context.Context, cmds []OutboxCommand) {
	for _, o := range cmds {
		s.publish(ctx, o)
	}
}

// publish sends o once and records the attempt: a cancel or reject that
// reached a connected terminal is delivered; an assign stays pending
// until it is answered.
func (s *Service) publish(ctx context.Context, o OutboxCommand) {
	c := s.courier
	c.mu.Lock()
	if c.busy[o.ID] {
		c.mu.Unlock()
		return
	}
	c.busy[o.ID] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.busy, o.ID)
		c.mu.Unlock()
	}()

	reached := s.reachable(o.Unit)
	if !s.send(ctx, o.Unit, o.Command) {
		return
	}
	now := s.now().UTC()
	o.Attempts++
	if reached {
		o.SentAt = now
		if o.Command.Type != telemetry.CommandAssign {
			o.State, o.SettledAt = CommandDelivered, now
		}
	}
	// The request that decided may be gone: the record of the attempt is not.
	if err := s.store.UpdateCommand(context.WithoutCancel(ctx), o); err != nil && !errors.Is(err, ErrConflict) {
		s.log.Warn("outbox: record an attempt", "command", o.ID, "err", err)
	}
}

// sendNow stores cmd to unit in the outbox on its own (no decision comes
// with it) and sends it.
func (s *Service) sendNow(ctx context.Context, unit string, cmd telemetry.Command) {
	o := s.newCommand(unit, cmd, s.now().UTC())
	if err := s.store.Apply(ctx, Change{Commands: []OutboxCommand{o}}); err != nil {
		s.log.Error("outbox: store a command", "unit", unit, "type", cmd.Type, "err", err)
		s.send(ctx, unit, cmd) // better once than never
		return
	}
	s.publish(ctx, o)
}
