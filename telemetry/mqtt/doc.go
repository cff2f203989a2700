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
// from BrokerConfig, and authentication and ACLs plug in as mochi hooks.
//
// Both have a Run(ctx) method that returns once ctx is done and everything
// they started has stopped.
package mqtt
