package web

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// The live feed's fan-out. One goroutine (the fan) takes every event from
// the bus, encodes it once, and adds it to the pending batch of each
// group of consoles that may see it (consoles of one scope see the same
// events). Every window, and at once when a batch holds anything but a
// unit's state, each group's batch becomes one frame ({"type":"batch",
// "events":[...]}), encoded and framed once (a websocket.PreparedMessage)
// and handed to each console of the group; each console's own goroutine
// writes it.
//
// A unit's newer state replaces its older one in a batch, so a batch
// holds at most one state per unit and every other event, in order. A
// console that falls behind (more than mergeAt frames waiting while it
// writes) merges its waiting frames the same way into one of its own, in
// its own goroutine, off the fan's path: it catches up with the latest
// state at once instead of replaying the past. Past maxQueued frames the
// fan folds them into that batch, so that what waits for a console is
// bounded by the fleet, not by time. Only a console that stops reading
// is dropped (its write deadline passes), or one that falls maxBehind
// events other than units' states behind.
const (
	// defaultWindow is how long unit states gather before they are sent.
	defaultWindow = 100 * time.Millisecond
	// fanBuffer is how many events the fan may fall behind the bus before
	// the bus drops it; every console is then closed (1013) to reconnect
	// for a fresh snapshot.
	fanBuffer = 1 << 16
	// fanChunk is how many events the fan takes from the bus at a time.
	fanChunk = 1024
	// mergeAt is how many shared frames a console writes as they are;
	// more waiting, it merges them into one of its own.
	mergeAt = 4
	// maxQueued is how many shared frames may wait for a console before
	// the fan folds them into its own batch (a console that stopped
	// reading, until its write deadline passes).
	maxQueued = 128
	// maxBehind is how many events other than units' states may wait for
	// one console before it is dropped as too slow.
	maxBehind = 4096
)

// batch is events, encoded, in the order they happened; a unit's newer
// state replaces its older one.
type batch struct {
	entries []entry
	units   map[string]int // unit id -> index of its state in entries
	live    int            // entries not replaced
	other   int            // events other than units' states
}

// entry is one encoded event: the state of unit, or any other event
// (unit ""); ev is nil once a newer state replaced it.
type entry struct {
	unit string
	ev   []byte
}

// add appends an encoded event; unit is the id of the unit whose state
// it is, "" for any other event. It reports whether it replaced an
// older state of the unit.
func (b *batch) add(unit string, ev []byte) (replaced bool) {
	if unit == "" {
		b.other++
	} else {
		if b.units == nil {
			b.units = map[string]int{}
		}
		if i, ok := b.units[unit]; ok {
			b.entries[i].ev = nil
			b.live--
			replaced = true
		}
		b.units[unit] = len(b.entries)
	}
	b.entries = append(b.entries, entry{unit: unit, ev: ev})
	b.live++
	if len(b.entries) > 64 && b.live < len(b.entries)/2 {
		b.compact()
	}
	return replaced
}

// compact drops the replaced states.
func (b *batch) compact() {
	kept := b.entries[:0]
	for _, e := range b.entries {
		if e.ev != nil {
			if e.unit != "" {
				b.units[e.unit] = len(kept)
			}
			kept = append(kept, e)
		}
	}
	clear(b.entries[len(kept):])
	b.entries = kept
}

// merge adds the events of o after those of b; it returns how many
// states it replaced.
func (b *batch) merge(o *batch) (replaced int) {
	for _, e := range o.entries {
		if e.ev != nil && b.add(e.unit, e.ev) {
			replaced++
		}
	}
	return replaced
}

func (b *batch) empty() bool { return b.live == 0 }

// frame is the batch as one message of the live feed.
func (b *batch) frame() []byte {
	n := len(batchHead) + len(batchTail)
	for _, e := range b.entries {
		n += len(e.ev) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, batchHead...)
	first := true
	for _, e := range b.entries {
		if e.ev == nil {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		out = append(out, e.ev...)
		first = false
	}
	return append(out, batchTail...)
}

var (
	batchHead = []byte(`{"type":"batch","events":[`)
	batchTail = []byte(`]}`)
)

// sent is one frame for the consoles of a group: the batch it was made
// of (a console that falls behind merges it) and the message, framed
// once for them all.
type sent struct {
	b   *batch
	msg *websocket.PreparedMessage
}

// group is the consoles of one scope ("" for the whole area) and the
// events gathered for them since the last frame.
type group struct {
	scope    string
	consoles map[*console]struct{}
	pending  *batch
	urgent   bool // pending holds an event that is not a unit's state
}

// fan takes events from the bus and hands frames to the consoles. It
// runs from the first console's arrival until the hub shuts down.
type fan struct {
	h      *hub
	window time.Duration
	groups map[string]*group                     // by scope; guarded by h.mu
	sub    atomic.Pointer[dispatch.Subscription] // the one followed, for Backlog
}

// run follows the bus from sub, its first subscription (taken before
// the first console joined, so that it misses nothing), until ctx is done.
func (f *fan) run(ctx context.Context, sub *dispatch.Subscription) {
	tick := time.NewTicker(f.window)
	defer tick.Stop()
	for {
		f.sub.Store(sub)
		behind := f.follow(ctx, sub, tick.C)
		sub.Close()
		if !behind {
			return
		}
		sub = f.restart()
	}
}

// restart follows the bus again after it dropped the fan: events were
// lost, so every console ends (1013) to reconnect for a fresh snapshot.
// Under h.mu, so that a console joins either before (and ends) or after
// the new subscription.
func (f *fan) restart() *dispatch.Subscription {
	h := f.h
	h.s.log.Warn("live: the feed fell behind the events; every console reconnects for a fresh snapshot")
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.s.cfg.Events.Subscribe(fanBuffer)
	for c := range h.conns {
		c.end(websocket.CloseTryAgainLater, "too slow: reconnect for a fresh snapshot")
	}
	for _, g := range f.groups {
		g.pending, g.urgent = &batch{}, false
	}
	h.dropped.Add(float64(len(h.conns)))
	return sub
}

// follow hands the events of sub on until ctx is done (false) or the bus
// dropped sub for falling behind (true).
func (f *fan) follow(ctx context.Context, sub *dispatch.Subscription, tick <-chan time.Time) (behind bool) {
	chunk := make([]dispatch.Event, 0, fanChunk)
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			f.flush(false)
		case e, ok := <-sub.C:
			if !ok {
				return true
			}
			chunk = append(chunk[:0], e)
		more:
			for len(chunk) < fanChunk {
				select {
				case e, ok := <-sub.C:
					if !ok {
						f.take(chunk)
						return true
					}
					chunk = append(chunk, e)
				default:
					break more
				}
			}
			f.take(chunk)
			f.flush(true)
			clear(chunk)
		}
	}
}

// encoded is an event as the consoles get it.
type encoded struct {
	e    *dispatch.Event
	unit string // the unit whose state it is, "" for any other event
	b    []byte
}

// take encodes each event once and adds it to the groups that may see it.
func (f *fan) take(chunk []dispatch.Event) {
	h := f.h
	evs := make([]encoded, 0, len(chunk))
	for i := range chunk {
		e := &chunk[i]
		if e.Type == dispatch.EventSessions {
			evs = append(evs, encoded{e: e})
			continue
		}
		if h.consoles.Load() == 0 {
			continue // nobody to encode it for
		}
		b, err := json.Marshal(e)
		if err != nil {
			h.s.log.Error("live: encode event", "type", e.Type, "err", err)
			continue
		}
		unit := ""
		if e.Type == dispatch.EventUnit && e.Unit != nil {
			unit = e.Unit.ID
		}
		evs = append(evs, encoded{e: e, unit: unit, b: b})
	}
	area := h.s.cfg.Dispatch.Area()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		e := ev.e
		if e.Type == dispatch.EventSessions { // internal: never sent on
			for c := range h.conns {
				if e.Sessions.Ends(c.f.p.Name, c.f.hash) {
					c.end(closeSessionEnded, "session ended: sign in again")
				}
			}
			continue
		}
		for _, g := range f.groups {
			// Deny by default: an event without a jurisdiction goes only
			// to consoles of the whole area.
			if !e.In(area, g.scope) {
				continue
			}
			if g.pending.add(ev.unit, ev.b) {
				h.coalesced.Inc()
			}
			if ev.unit == "" {
				g.urgent = true
			}
		}
	}
}

// flush makes a frame of each group's pending events and hands it to the
// group's consoles: every group's, or only those holding an event other
// than units' states when urgentOnly.
func (f *fan) flush(urgentOnly bool) {
	h := f.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range f.groups {
		if g.pending.empty() || (urgentOnly && !g.urgent) {
			continue
		}
		b := g.pending
		g.pending, g.urgent = &batch{}, false
		msg, err := websocket.NewPreparedMessage(websocket.TextMessage, b.frame())
		if err != nil {
			h.s.log.Error("live: frame", "err", err)
			continue
		}
		s := &sent{b: b, msg: msg}
		for c := range g.consoles {
			if n := c.push(s); n > 0 {
				h.coalesced.Add(float64(n))
			}
		}
	}
}

// join adds c to the group of its scope. The caller holds h.mu.
func (f *fan) join(c *console) {
	g := f.groups[c.f.scope]
	if g == nil {
		g = &group{scope: c.f.scope, consoles: map[*console]struct{}{}, pending: &batch{}}
		f.groups[c.f.scope] = g
	}
	g.consoles[c] = struct{}{}
}

// leave removes c from its group. The caller holds h.mu.
func (f *fan) leave(c *console) {
	g := f.groups[c.f.scope]
	if g == nil {
		return
	}
	delete(g.consoles, c)
	if len(g.consoles) == 0 {
		delete(f.groups, c.f.scope)
	}
}

// console is one live feed: who it is for, and what waits to be written
// to it.
type console struct {
	conn   *websocket.Conn
	f      feed
	cancel context.CancelFunc
	wake   chan struct{} // something waits; capacity 1

	mu     sync.Mutex
	own    *batch  // events folded out of the queue, before it; nil when none
	queue  []*sent // shared frames waiting, in order
	other  int     // events other than units' states waiting
	code   int     // why the feed ends, once it must (0: it goes on)
	reason string
}

// push hands a frame to c; it returns how many unit states folding
// replaced. A console maxQueued frames behind has them folded into its
// own batch; one maxBehind other events behind ends. The caller holds
// h.mu: push costs the fan little unless the console stopped reading.
func (c *console) push(s *sent) (replaced int) {
	c.mu.Lock()
	c.queue = append(c.queue, s)
	c.other += s.b.other
	if len(c.queue) > maxQueued {
		replaced = c.fold()
	}
	behind := c.other > maxBehind
	c.mu.Unlock()
	if behind {
		c.end(websocket.CloseTryAgainLater, "too slow: reconnect for a fresh snapshot")
		return replaced
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return replaced
}

// fold merges the queue into c.own. The caller holds c.mu.
func (c *console) fold() (replaced int) {
	if c.own == nil {
		c.own = &batch{}
	}
	for _, q := range c.queue {
		replaced += c.own.merge(q.b)
	}
	clear(c.queue)
	c.queue = c.queue[:0]
	return replaced
}

// take returns what waits for c, and empties it: the shared frames to
// write as they are, or, for a console more than mergeAt frames behind,
// one batch of its own holding all of them merged (replaced says how
// many unit states that merge replaced).
func (c *console) take() (shared []*sent, own *batch, replaced int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.other = 0
	if c.own == nil && len(c.queue) <= mergeAt {
		shared, c.queue = c.queue, nil
		return shared, nil, 0
	}
	replaced = c.fold()
	own, c.own = c.own, nil
	return nil, own, replaced
}

// end makes the feed end with code and reason; the first reason stands.
func (c *console) end(code int, reason string) {
	c.mu.Lock()
	if c.code == 0 {
		c.code, c.reason = code, reason
	}
	c.mu.Unlock()
	c.cancel()
}

// ending returns why the feed ends, if it must.
func (c *console) ending() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}
