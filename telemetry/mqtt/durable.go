package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// DefaultIngestTimeout bounds one call of BrokerConfig.Ingest.
const DefaultIngestTimeout = 10 * time.Second

// Retries of a failed Ingest call within IngestTimeout.
const (
	ingestRetryMin = 50 * time.Millisecond
	ingestRetryMax = time.Second
)

// durable is the hook that hands the terminals' uplink to a Handler inside
// the embedded broker, before the broker acknowledges it.
//
// mochi calls OnPublish in the publisher's read loop after the ACL check
// and before it writes the PUBACK (or PUBREC) and fans the message out, so a
// PUBACK means Handle returned nil: the report is durable. A failed Handle
// is retried, with backoff, until IngestTimeout: a blip in the store only
// delays the PUBACK (and holds that terminal's later messages behind it,
// in order). If it still fails the packet is rejected, so there is no
// PUBACK and no fan-out, and the publisher is disconnected: MQTT
// retransmits an unacknowledged publish only when the client reconnects
// with its session, and a terminal should not wait for its next coverage
// gap to do so. Its reconnection paces the next attempt. (A QoS 0 message
// has no retransmission; it is dropped, without disconnecting.)
//
// mochi publishes a last will without calling OnPublish, so OnWillSent
// hands the will (a unit's "offline") to the Handler as well, once, with
// nothing to retransmit it if that fails.
type durable struct {
	mochi.HookBase
	h       Handler
	srv     *mochi.Server
	ctx     context.Context // mochi's callbacks carry none; this one ends with the broker
	timeout time.Duration
	log     *slog.Logger
	metrics *Metrics
	logs    quota
}

var _ mochi.Hook = (*durable)(nil)

func newDurable(ctx context.Context, srv *mochi.Server, h Handler, timeout time.Duration, log *slog.Logger, m *Metrics) *durable {
	return &durable{h: h, srv: srv, ctx: ctx, timeout: timeout, log: log, metrics: m,
		logs: quota{window: time.Minute, perKey: 1, total: 100}}
}

// ID implements mochi.Hook.
func (*durable) ID() string { return "lifeline-ingest" }

// Provides implements mochi.Hook.
func (*durable) Provides(b byte) bool { return b == mochi.OnPublish || b == mochi.OnWillSent }

// OnPublish implements mochi.Hook.
func (d *durable) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !uplink(pk.TopicName) {
		return pk, nil
	}
	err := d.handle(pk.TopicName, pk.Payload)
	if err == nil {
		return pk, nil
	}
	d.failed(cl, pk.TopicName, err, "not acknowledged; the terminal retransmits it after reconnecting")
	if pk.FixedHeader.Qos > 0 {
		disconnect(d.srv, cl, packets.ErrImplementationSpecificError)
	}
	return pk, packets.ErrRejectPacket
}

// OnWillSent implements mochi.Hook. A will sent because the broker is
// shutting down is not handled: the unit is not offline, we are.
func (d *durable) OnWillSent(cl *mochi.Client, pk packets.Packet) {
	if d.ctx.Err() != nil || !uplink(pk.TopicName) {
		return
	}
	if err := d.handle(pk.TopicName, pk.Payload); err != nil {
		d.failed(cl, pk.TopicName, err, "last will not recorded")
	}
}

// handle calls the Handler until it succeeds or the timeout would pass.
func (d *durable) handle(topic string, payload []byte) error {
	ctx, cancel := context.WithTimeout(d.ctx, d.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	wait := ingestRetryMin
	for {
		err := safeHandle(ctx, d.h, topic, payload)
		if err == nil || time.Until(deadline) < wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, ingestRetryMax)
	}
}

// failed counts a Handle error and logs it at most once per client per
// minute.
func (d *durable) failed(cl *mochi.Client, topic string, err error, what string) {
	d.metrics.ingestErrors.Inc()
	if d.ctx.Err() != nil {
		d.log.Debug("mqtt ingest stopped at shutdown", "client", cl.ID, "topic", topic, "error", err)
		return
	}
	if d.logs.allow(cl.ID, time.Now()) {
		d.log.Warn("mqtt ingest failed: "+what, "client", cl.ID, "topic", topic, "error", err)
	}
}

// uplink reports whether topic is one the Ingester's default subscription
// (telemetry.UplinkFilter) would receive, other than a cmd topic.
func uplink(topic string) bool {
	_, kind, ok := splitUnitTopic(topic)
	return ok && kind != string(telemetry.KindCmd)
}

// safeHandle calls h, turning a panic into an error so that bad input
// cannot take the server down.
func safeHandle(ctx context.Context, h Handler, topic string, payload []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h.Handle(ctx, topic, payload)
}
