package sim

import (
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// ackStore is paho's in-memory session store, telling Config.Acked of
// every QoS 1 publish of the terminal that a PUBACK took out of it.
//
// paho removes an outgoing publish from its store only when the broker's
// PUBACK arrives. Its publish token is no witness: after a reconnection
// paho completes the token of every publish still in flight, without an
// error, and sends the message again under a new token (paho.mqtt.golang
// issue 563), so a terminal that trusted the token would log as
// acknowledged a message the broker has not acknowledged yet, and may
// never.
type ackStore struct {
	*paho.MemoryStore
	unit  string
	acked func(unit string, k telemetry.Kind, payload []byte)
}

// Del implements paho.Store.
func (s *ackStore) Del(key string) {
	if strings.HasPrefix(key, "o.") {
		if p, ok := s.MemoryStore.Get(key).(*packets.PublishPacket); ok && p.Qos == 1 {
			if _, kind, err := telemetry.ParseTopic(p.TopicName); err == nil {
				s.acked(s.unit, kind, p.Payload)
			}
		}
	}
	s.MemoryStore.Del(key)
}
