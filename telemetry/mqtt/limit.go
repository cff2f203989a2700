package mqtt

import (
	"context"
	"errors"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"
)

// Defaults of BrokerConfig's message rate.
const (
	DefaultMessageRate  rate.Limit = 20
	DefaultMessageBurst            = 100
	DefaultFloodTimeout            = 30 * time.Second
)

// minSweep is the number of rate meters kept before the idle ones are
// first swept away.
const minSweep = 1024

// guard is the hook that enforces the limits every client is under,
// whether or not Auth is on: the message rate, the reserved client id, and
// the reporting of oversized packets.
//
// The message rate is a token bucket per client id, kept across
// reconnections so that reconnecting does not refill it. A message the
// bucket has no token for is held until it has one: mochi calls OnPublish
// in the client's read loop, so holding it stops the broker reading from
// that connection, TCP pushes back on the terminal, and nothing is dropped
// or left unacknowledged. A client that sends faster than the rate for
// longer than the flood timeout is disconnected; what it had not had
// acknowledged it retransmits after reconnecting.
type guard struct {
	mochi.HookBase
	srv     *mochi.Server
	ctx     context.Context // mochi's callbacks carry none; this one ends with the broker
	limit   rate.Limit
	burst   int
	flood   time.Duration
	exempt  func(cl *mochi.Client) bool // the server's own client
	metrics *Metrics
	deny    *reporter

	mu      sync.Mutex
	meters  map[string]*meter
	sweepAt int
}

var _ mochi.Hook = (*guard)(nil)

// meter is the message rate of one client id.
type meter struct {
	lim *rate.Limiter

	mu    sync.Mutex
	since time.Time // when the current run of held-back messages began
}

// ID implements mochi.Hook.
func (*guard) ID() string { return "lifeline-limits" }

// Provides implements mochi.Hook.
func (*guard) Provides(b byte) bool {
	return b == mochi.OnConnect || b == mochi.OnPublish || b == mochi.OnDisconnect
}

// OnConnect implements mochi.Hook: it refuses the client id of mochi's
// inline client, through which Broker.Send publishes, so that no client can
// take its session over. (mochi closes the connection without a CONNACK.)
func (g *guard) OnConnect(cl *mochi.Client, _ packets.Packet) error {
	if cl.ID == mochi.InlineClientId {
		g.deny.report(cl, DeniedClientID, "")
		return packets.ErrClientIdentifierNotValid
	}
	return nil
}

// OnPublish implements mochi.Hook. It holds a message until the client's
// rate allows it, or disconnects a client that has been over the rate for
// longer than the flood timeout.
func (g *guard) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if g.limit == rate.Inf || cl.Net.Inline || g.exempt(cl) {
		return pk, nil
	}
	m := g.meter(cl.ID)
	now := time.Now()
	m.mu.Lock()
	r := m.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait == 0 {
		m.since = time.Time{}
		m.mu.Unlock()
		return pk, nil
	}
	if m.since.IsZero() {
		m.since = now
	}
	flooding := now.Sub(m.since) >= g.flood
	if flooding {
		r.CancelAt(now)
		m.since = time.Time{} // a new connection gets a new flood timeout
	}
	m.mu.Unlock()

	if flooding {
		g.deny.report(cl, DeniedFlood, pk.TopicName)
		disconnect(g.srv, cl, packets.ErrMessageRateTooHigh)
		return pk, packets.ErrRejectPacket
	}
	g.metrics.throttled.Inc()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return pk, nil
	case <-g.ctx.Done():
		r.Cancel()
		return pk, packets.ErrRejectPacket // shutting down: not acknowledged
	}
}

// OnDisconnect implements mochi.Hook; it reports a client mochi
// disconnected for a packet over MaxPacketSize.
func (g *guard) OnDisconnect(cl *mochi.Client, err error, _ bool) {
	if errors.Is(err, packets.ErrPacketTooLarge) {
		g.deny.report(cl, DeniedPacketTooLarge, "")
	}
}

// meter returns the meter of client id, creating it if needed.
func (g *guard) meter(id string) *meter {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m, ok := g.meters[id]; ok {
		return m
	}
	if len(g.meters) >= g.sweepAt {
		g.sweep(time.Now())
	}
	m := &meter{lim: rate.NewLimiter(g.limit, g.burst)}
	g.meters[id] = m
	return m
}

// sweep forgets the meters that are full again: a new one is the same.
// What is left are clients that published within the last burst/rate.
func (g *guard) sweep(now time.Time) {
	for id, m := range g.meters {
		if m.lim.TokensAt(now) >= float64(g.burst) {
			delete(g.meters, id)
		}
	}
	g.sweepAt = max(2*len(g.meters), minSweep)
}

// disconnect closes cl's connection. An MQTT 5 client is told why first;
// an MQTT 3.1.1 server never sends DISCONNECT.
func disconnect(srv *mochi.Server, cl *mochi.Client, code packets.Code) {
	if cl.Properties.ProtocolVersion == 5 {
		_ = srv.DisconnectClient(cl, code)
		return
	}
	cl.Stop(code)
}
