package telemetry

import (
	"fmt"
	"strings"
)

// Prefix is the root of every unit topic in contract v1.
const Prefix = "ems/v1/units/"

// UplinkFilter is the subscription that receives every terminal's uplink.
// It also matches the downlink cmd topics; the pipeline ignores those.
const UplinkFilter = Prefix + "+/+"

// Kind is the last level of a unit topic: what a message carries.
type Kind string

// The kinds of contract v1. KindCmd is the only downlink.
const (
	KindGPS    Kind = "gps"
	KindVideo  Kind = "video"
	KindStatus Kind = "status"
	KindAck    Kind = "ack"
	KindOnline Kind = "online"
	KindCmd    Kind = "cmd"
)

// Uplink reports whether terminals publish on this kind.
func (k Kind) Uplink() bool {
	switch k {
	case KindGPS, KindVideo, KindStatus, KindAck, KindOnline:
		return true
	}
	return false
}

// Topic returns the topic of unit for kind k.
func Topic(unit string, k Kind) string { return Prefix + unit + "/" + string(k) }

// ValidUnitID reports whether id can name a unit: 1 to 64 ASCII letters,
// digits, '-' or '_'. This keeps ids safe as a single MQTT topic level
// (no '/', '+', '#') and as a URL path segment.
func ValidUnitID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// ParseTopic splits a unit topic into the unit id and the kind.
func ParseTopic(topic string) (unit string, k Kind, err error) {
	rest, ok := strings.CutPrefix(topic, Prefix)
	if !ok {
		return "", "", fmt.Errorf("topic %q: not under %s", topic, Prefix)
	}
	unit, kind, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(kind, "/") {
		return "", "", fmt.Errorf("topic %q: want %s{unit}/{kind}", topic, Prefix)
	}
	if !ValidUnitID(unit) {
		return "", "", fmt.Errorf("topic %q: invalid unit id", topic)
	}
	k = Kind(kind)
	if !k.Uplink() && k != KindCmd {
		return "", "", fmt.Errorf("topic %q: unknown kind %q", topic, kind)
	}
	return unit, k, nil
}
