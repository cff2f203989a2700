// Package telemetry turns what ambulance terminals report into facts the
// rest of Lifeline can trust. Terminals publish GPS fixes, video uplink
// state, crew status presses, acknowledgements of assignments and their
// presence on MQTT topics under ems/v1/units/{unit}/ (contract v1, see
// topic.go); this package owns those reports as types (Fix, Video, Status,
// Ack, Presence), their wire codec (DecodeFixes, EncodeFixes, ...), the
// per-unit Validator that drops what must never move a unit on a map
// (coordinates out of range, fixes from the future or too old, replayed
// sequence numbers, impossible jumps), and the Pipeline that a broker
// client feeds message by message and that hands what survives to a Sink.
//
// Bad input is expected and never an error of the caller's: it is dropped,
// counted in a Prometheus metric with its Reason and logged at most once
// per unit per minute. Only a failing Sink makes Pipeline.Handle return an
// error, so that the broker redelivers the message.
//
// The package speaks to no broker and knows nothing of dispatch: the MQTT
// adapter lives in telemetry/mqtt, and dispatch implements Registry and
// Sink, the two interfaces declared here. Its only Lifeline import is geo.
package telemetry
