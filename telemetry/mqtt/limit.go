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
// whether or not Auth is on: the message rate, the reserved client id, the
// topics no client may publish to, the reporting of oversized packets and
// the penalty box (see penalties).
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
	pen     *penalties

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
	return b == mochi.OnConnect || b == mochi.OnPublish || b == mochi.OnDisconnect || b == mochi.OnPacketRead
}

// OnConnect implements mochi.Hook. It refuses the client id of mochi's
// inline client, through which Broker.Send publishes, so that no client can
// take its session over (mochi closes the connection without a CONNACK).
// It holds a client serving a penalty (see penalties) for up to
// penaltyHold, then refuses it: CONNACK "server unavailable" (MQTT 3.1.1)
// or "connection rate exceeded" (MQTT 5). Both come before the client is
// authenticated, so they cost no password hash.
func (g *guard) OnConnect(cl *mochi.Client, _ packets.Packet) error {
	if cl.ID == mochi.InlineClientId {
		g.deny.report(cl, DeniedClientID, "")
		return packets.ErrClientIdentifierNotValid
	}
	wait := g.pen.serving(cl.ID, time.Now())
	if wait <= 0 || g.exempt(cl) {
		return nil
	}
	g.deny.report(cl, DeniedPenalty, "", "remaining", wait.Round(time.Second).String())
	t := time.NewTimer(min(wait, penaltyHold))
	select {
	case <-t.C:
	case <-g.ctx.Done():
		t.Stop()
	}
	code := packets.ErrServerUnavailable
	if cl.Properties.ProtocolVersion == 5 {
		code = packets.ErrConnectionRateExceeded
	}
	_ = g.srv.SendConnack(cl, code, false, nil)
	return code
}

// OnPacketRead implements mochi.Hook. mochi drops a publish to a topic no
// client may publish to ($SYS...) without a word, so a QoS 1 or 2 one
// would wait for its PUBACK for ever: it is refused here, as an offence,
// like a publish the ACL denies: an MQTT 5 client gets PUBACK (or PUBREC)
// "topic name invalid", an MQTT 3.1.1 client, which has no negative
// PUBACK, is disconnected.
func (g *guard) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 || cl.Net.Inline ||
		(pk.TopicName == "" && pk.Properties.TopicAlias > 0) || mochi.IsValidFilter(pk.TopicName, true) {
		return pk, nil
	}
	g.deny.report(cl, DeniedTopic, pk.TopicName)
	if cl.Properties.ProtocolVersion != 5 {
		g.offence(cl, false)
		return pk, packets.ErrRejectPacket // ends the connection
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID,
		ReasonCode: packets.ErrTopicNameInvalid.Code}
	if pk.FixedHeader.Qos == 2 {
		ack.FixedHeader.Type = packets.Pubrec
	}
	_ = cl.WritePacket(ack)
	// mochi drops it quietly as QoS 0.
	pk.FixedHeader.Qos, pk.PacketID = 0, 0
	g.offence(cl, true)
	return pk, nil
}

// offence puts an offence of cl in the penalty box and, when it earns a
// penalty and cl is still connected, disconnects it.
func (g *guard) offence(cl *mochi.Client, connected bool) {
	if g.exempt(cl) || cl.Net.Inline {
		return
	}
	if d := g.pen.offend(cl.ID, time.Now()); d > 0 && connected {
		disconnect(g.srv, cl, packets.ErrConnectionRateExceeded)
	}
}

// deniedPublish is told of a publish the ACL refused. An MQTT 3.1.1
// client is disconnected by mochi for a QoS 1 or 2 one (OnDisconnect
// counts the offence); an MQTT 5 one is answered and stays, so one that
// keeps publishing where it may not is disconnected here, as an offender.
func (g *guard) deniedPublish(cl *mochi.Client) {
	if cl.Properties.ProtocolVersion != 5 || g.exempt(cl) || g.pen.denied.allow(cl.ID, time.Now()) {
		return
	}
	g.offence(cl, false)
	disconnect(g.srv, cl, packets.ErrNotAuthorized)
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
		g.offence(cl, false)
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

// OnDisconnect implements mochi.Hook. It reports a client mochi
// disconnected for a packet over MaxPacketSize, and counts that, and a
// QoS 1 or 2 publish the ACL refused an MQTT 3.1.1 client (which mochi
// answers by disconnecting), as offences.
func (g *guard) OnDisconnect(cl *mochi.Client, err error, _ bool) {
	switch {
	case errors.Is(err, packets.ErrPacketTooLarge):
		g.deny.report(cl, DeniedPacketTooLarge, "")
		g.offence(cl, false)
	case errors.Is(err, packets.ErrNotAuthorized):
		g.offence(cl, false)
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
