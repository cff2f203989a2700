package mqtt

import (
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// readyHook tells the server when a terminal can take commands again: it
// subscribed to its cmd topic, or it resumed a session that holds that
// subscription. The server then sends what waits for it (the outbox).
type readyHook struct {
	mochi.HookBase
	ready func(unit string)
}

var _ mochi.Hook = (*readyHook)(nil)

// ID implements mochi.Hook.
func (*readyHook) ID() string { return "commands-ready" }

// Provides implements mochi.Hook.
func (*readyHook) Provides(b byte) bool {
	return b == mochi.OnSubscribed || b == mochi.OnSessionEstablished
}

// OnSubscribed implements mochi.Hook: mochi calls it once the
// subscriptions are in place, before the SUBACK.
func (h *readyHook) OnSubscribed(cl *mochi.Client, pk packets.Packet, codes []byte) {
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] >= packets.ErrUnspecifiedError.Code {
			continue // refused
		}
		h.cmd(f.Filter)
	}
}

// OnSessionEstablished implements mochi.Hook: a resumed session keeps its
// subscriptions without a SUBSCRIBE.
func (h *readyHook) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	for filter := range cl.State.Subscriptions.GetAll() {
		h.cmd(filter)
	}
}

// cmd calls ready when filter is a unit's cmd topic.
func (h *readyHook) cmd(filter string) {
	if unit, k, err := telemetry.ParseTopic(filter); err == nil && k == telemetry.KindCmd {
		h.ready(unit)
	}
}

// Reachable reports whether a command sent to unit now reaches its
// terminal: a connected client is subscribed to the unit's cmd topic
// (dispatch.Reacher). A persistent session whose client is away does not
// count: what is queued for it is lost if the broker restarts.
func (b *Broker) Reachable(unit string) bool {
	if !b.Connected() || !telemetry.ValidUnitID(unit) {
		return false
	}
	subs := b.srv.Topics.Subscribers(telemetry.Topic(unit, telemetry.KindCmd))
	for id := range subs.Subscriptions {
		if cl, ok := b.srv.Clients.Get(id); ok && !cl.Closed() {
			return true
		}
	}
	return false
}
