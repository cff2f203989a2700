// Package mqtt connects Lifeline to MQTT brokers: it is the adapter between
// the vehicle terminals' topics (contract v1, under ems/v1/units/) and the
// telemetry domain.
//
// An Ingester is the server's one MQTT client. It holds a persistent session
// (clean session off, a stable client id), subscribes to the uplink at QoS 1
// after every connect, hands each message to a Handler and acknowledges it
// only when the Handler returns nil, so a message that could not be handled
// is redelivered by the broker on the next session. It also publishes
// downlink commands to a unit's cmd topic. Several lifelined instances can
// split the stream with an MQTT shared subscription.
//
// A Broker is the embedded broker (mochi-mqtt) that lifelined runs when no
// external broker is configured. Every limit it enforces is set explicitly
// from BrokerConfig, including a message rate per client. With
// BrokerConfig.Auth it denies by default: a terminal logs in as its unit
// (client id = username) and may publish only its own uplink and subscribe
// only to its own cmd topic; only the server's own user may read the whole
// uplink. With BrokerConfig.Ingest the broker hands each uplink message to
// the Handler before it acknowledges it, so that a terminal's PUBACK means
// the report is stored (mochi itself keeps nothing across a restart, and
// drops QoS 1 messages to a subscriber that falls MaxInflight behind, so an
// Ingester subscribed to the embedded broker could lose what was
// acknowledged); Broker.Send then publishes commands without any MQTT
// client. deploy/mosquitto-acl and deploy/EMQX.md apply the same rules to
// external brokers.
//
// The broker is built to be attacked by a terminal that has valid
// credentials: it caps the connections it holds (MaxConns), answers every
// QoS 1 publish it refuses, puts clients that keep doing what no working
// terminal does in a penalty box (penalties), and never logs a payload:
// mochi logs through libLog, which summarises packets and rate-limits.
//
// Both have a Run(ctx) method that returns once ctx is done and everything
// they started has stopped.
package mqtt
