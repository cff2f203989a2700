package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Terminal limits.
const (
	connectTimeout = 10 * time.Second
	publishTimeout = 10 * time.Second
	// stopGrace is how long a stopping terminal still waits for the
	// broker's answer to a publish in flight.
	stopGrace    = 500 * time.Millisecond
	stopTimeout  = 2 * time.Second // for the offline message on a clean stop
	disconnectMs = 250
	cmdBuffer    = 64   // commands waiting for the terminal's loop
	maxPending   = 5000 // fixes kept through a coverage gap
	maxOutbox    = 1000 // status presses and acks kept through a gap
	maxBatch     = 500  // fixes per message when catching up after a gap
)

// message is one publish waiting in a terminal's outbox.
type message struct {
	kind    telemetry.Kind
	payload []byte
	fixes   int // fixes it carries, for gps
}

// terminal is one unit's vehicle terminal: an MQTT client that reports
// its vehicle and feeds it the commands it receives.
type terminal struct {
	f      *Fleet
	id     string
	rng    *rand.Rand
	v      *vehicle
	client paho.Client
	log    *slog.Logger

	cmds      chan []byte   // filled by paho's handler, drained by run
	connected chan struct{} // a (re)connection happened

	pending []telemetry.Fix // fixes not yet in a message
	outbox  []message       // messages waiting for a connection
}

func (f *Fleet) newTerminal(u UnitSpec) *terminal {
	rng := f.rng(u.ID)
	t := &terminal{
		f: f, id: u.ID, rng: rng,
		v:         newVehicle(u, f.world, f.cfg, rng, time.Now()),
		log:       f.log.With("unit", u.ID),
		cmds:      make(chan []byte, cmdBuffer),
		connected: make(chan struct{}, 1),
	}
	opts := paho.NewClientOptions().
		AddBroker(f.cfg.URL).
		SetClientID(f.cfg.ClientPrefix+u.ID).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(10*time.Second).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(30*time.Second).
		SetBinaryWill(t.topic(telemetry.KindOnline), telemetry.EncodePresence(false), 1, true).
		SetDefaultPublishHandler(t.onMessage).
		SetOnConnectHandler(func(paho.Client) {
			select {
			case t.connected <- struct{}{}:
			default: // run has not handled the last one yet; one is enough
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			f.errors.Add(1)
			t.log.Warn("connection lost, reconnecting", "err", err)
		})
	if f.cfg.Acked != nil {
		opts.SetStore(&ackStore{MemoryStore: paho.NewMemoryStore(), unit: u.ID, acked: f.cfg.Acked})
	}
	if f.cfg.Credentials != nil {
		user, pass := f.cfg.Credentials(u.ID)
		opts.SetUsername(user).SetPassword(pass)
	}
	t.client = paho.NewClient(opts)
	return t
}

func (t *terminal) topic(k telemetry.Kind) string { return telemetry.Topic(t.id, k) }

// onMessage is paho's handler for the cmd topic. It must not block paho's
// router, so a command that finds the buffer full is dropped.
func (t *terminal) onMessage(_ paho.Client, m paho.Message) {
	if m.Topic() != t.topic(telemetry.KindCmd) {
		return
	}
	select {
	case t.cmds <- m.Payload():
	default:
		t.f.errors.Add(1)
		t.log.Warn("command dropped: terminal busy")
	}
}

// run connects, then reports the vehicle and handles commands until ctx is
// done, when it publishes its retained offline and disconnects.
func (t *terminal) run(ctx context.Context) error {
	tok := t.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		<-tok.Done() // bounded by connectTimeout
		t.client.Disconnect(0)
		return nil
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("unit %s: connect to %s: %w", t.id, t.f.cfg.URL, err)
	}
	defer t.stop(ctx)
	select { // paho calls the connect handler once the session is up
	case <-t.connected:
		t.online(ctx)
	case <-ctx.Done():
		return nil
	}

	// A newcomer sees every unit at once; later reports are spread over
	// their intervals so that a large fleet does not publish in bursts.
	now := time.Now()
	t.gps(ctx, now)
	nextGPS := now.Add(time.Duration(t.rng.Int64N(int64(t.f.cfg.Interval))))
	nextVideo := now.Add(time.Duration(t.rng.Int64N(int64(min(t.f.cfg.Interval, t.f.cfg.VideoEvery)))))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.connected:
			t.online(ctx)
		case b := <-t.cmds:
			t.command(ctx, b)
		case <-timer.C:
		}
		now = time.Now()
		t.send(ctx, t.v.step(now)...)
		if !now.Before(nextGPS) {
			t.gps(ctx, now)
			nextGPS = later(nextGPS, t.f.cfg.Interval, now)
		}
		if !now.Before(nextVideo) {
			t.video(ctx, now)
			nextVideo = later(nextVideo, t.f.cfg.VideoEvery, now)
		}
		wake := min(time.Until(nextGPS), time.Until(nextVideo))
		if next := t.v.next(); !next.IsZero() {
			wake = min(wake, time.Until(next))
		}
		timer.Reset(wake)
	}
}

// later returns the next tick after now of a clock that ticked at last
// every d, skipping ticks missed while busy.
func later(last time.Time, d time.Duration, now time.Time) time.Time {
	next := last.Add(d)
	if !next.After(now) {
		next = now.Add(d)
	}
	return next
}

// online announces the terminal and (re)subscribes after each connection,
// then sends what waited for it.
func (t *terminal) online(ctx context.Context) {
	if err := t.publish(ctx, telemetry.KindOnline, true, telemetry.EncodePresence(true)); err != nil {
		t.fail("publish online", err)
	}
	tok := t.client.Subscribe(t.topic(telemetry.KindCmd), 1, nil)
	if err := wait(ctx, tok); err != nil {
		t.fail("subscribe", err)
	}
	t.log.Debug("online")
	t.batch(true)
	t.flush(ctx)
}

// command handles one downlink payload.
func (t *terminal) command(ctx context.Context, b []byte) {
	t.f.commands.Add(1)
	c, err := telemetry.DecodeCommand(b)
	if err != nil {
		t.fail("bad command", err)
		return
	}
	out, err := t.v.command(time.Now(), c)
	if err != nil {
		t.log.Info("command ignored", "type", c.Type, "assignment", c.Assignment, "reason", err)
	}
	t.log.Debug("command", "type", c.Type, "assignment", c.Assignment)
	t.send(ctx, out...)
}

// gps takes a fix and publishes the pending ones once a batch is full.
func (t *terminal) gps(ctx context.Context, now time.Time) {
	t.pending = append(t.pending, t.v.fix(now))
	if n := len(t.pending) - maxPending; n > 0 {
		t.pending = t.pending[n:]
		t.f.errors.Add(uint64(n))
	}
	if len(t.pending) >= t.f.cfg.Batch && t.client.IsConnectionOpen() {
		t.batch(false)
		t.flush(ctx)
	}
}

// batch moves the pending fixes into the outbox: all of them in messages
// of at most maxBatch after a gap, else in messages of cfg.Batch.
func (t *terminal) batch(gap bool) {
	size := t.f.cfg.Batch
	if gap {
		size = max(size, maxBatch)
	}
	for len(t.pending) >= size || gap && len(t.pending) > 0 {
		n := min(size, len(t.pending))
		t.outbox = append(t.outbox, message{kind: telemetry.KindGPS, payload: telemetry.EncodeFixes(t.pending[:n]...), fixes: n})
		t.pending = t.pending[n:]
	}
	if len(t.pending) == 0 {
		t.pending = nil // let a long gap's backing array go
	}
}

// video publishes the video status; it is not kept through a gap.
func (t *terminal) video(ctx context.Context, now time.Time) {
	v := t.v.video(now)
	if !t.client.IsConnectionOpen() {
		return
	}
	t.outbox = append(t.outbox, message{kind: telemetry.KindVideo, payload: telemetry.EncodeVideo(v)})
	t.flush(ctx)
}

// send queues a vehicle's reports and publishes what it can.
func (t *terminal) send(ctx context.Context, rs ...report) {
	if len(rs) == 0 {
		return
	}
	for _, r := range rs {
		t.outbox = append(t.outbox, message{kind: r.kind, payload: r.payload})
	}
	if n := len(t.outbox) - maxOutbox; n > 0 {
		t.outbox = t.outbox[n:]
		t.f.errors.Add(uint64(n))
	}
	t.flush(ctx)
}

// flush publishes the outbox in order while the connection is up. A
// message that fails while the connection stays up is dropped; one that
// fails because it went down waits for the reconnection.
func (t *terminal) flush(ctx context.Context) {
	for len(t.outbox) > 0 && t.client.IsConnectionOpen() && ctx.Err() == nil {
		m := t.outbox[0]
		err := t.publish(ctx, m.kind, false, m.payload)
		if err != nil && (ctx.Err() != nil || !t.client.IsConnectionOpen()) {
			return
		}
		t.outbox = t.outbox[1:]
		if err != nil {
			t.fail("publish "+string(m.kind), err)
			continue
		}
		t.f.fixes.Add(uint64(m.fixes))
		if m.kind == telemetry.KindAck {
			t.f.acks.Add(1)
		}
	}
	if len(t.outbox) == 0 {
		t.outbox = nil
	}
}

// publish publishes one QoS 1 message and waits for the broker's ack.
func (t *terminal) publish(ctx context.Context, k telemetry.Kind, retained bool, payload []byte) error {
	err := wait(ctx, t.client.Publish(t.topic(k), 1, retained, payload))
	if err == nil {
		t.f.messages.Add(1)
	}
	return err
}

// wait waits for tok, ctx or publishTimeout.
func wait(ctx context.Context, tok paho.Token) error {
	timer := time.NewTimer(publishTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		// Stopping: the broker may already have taken what was sent. Give
		// its answer a moment, so that a message it acknowledged is
		// counted as sent, as the terminal's Acked hook already saw it.
		grace := time.NewTimer(stopGrace)
		defer grace.Stop()
		select {
		case <-tok.Done():
			return tok.Error()
		case <-grace.C:
			return ctx.Err()
		}
	case <-timer.C:
		return errors.New("timed out waiting for the broker")
	}
}

// fail counts and logs an error the terminal carries on after.
func (t *terminal) fail(what string, err error) {
	t.f.errors.Add(1)
	t.log.Warn(what, "err", err)
}

// stop publishes the retained offline, as the last will would have, and
// disconnects. Nothing else is published once ctx is done.
func (t *terminal) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if t.client.IsConnectionOpen() {
		if err := t.publish(ctx, telemetry.KindOnline, true, telemetry.EncodePresence(false)); err != nil {
			t.fail("publish offline", err)
		}
	}
	t.client.Disconnect(disconnectMs)
}
