package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Limits of what the broker library may log: per window, at most
// libLogsPerKey lines for one client and message, and libLogsPerWindow in
// all. Lines below Info (debug) are not limited: they are off in
// production and a developer who turns them on wants them.
const (
	libLogWindow     = time.Minute
	libLogsPerKey    = 3
	libLogsPerWindow = 200
)

// maxLogText bounds any text from a client (a topic, a username) in a log
// line.
const maxLogText = 128

// libLog is the slog.Handler mochi logs through. mochi logs packets whole,
// payload and CONNECT password included, and logs every refused QoS 1
// publish of an MQTT 3.1.1 client at WARN: a terminal that publishes 250 KB
// to a topic it may not and reconnects, over and over, wrote about 40 MB/s
// of log. libLog replaces every packet by a summary without its payload or
// credentials, clips long text, and lets at most libLogsPerKey lines of
// Info and above through per client and message per libLogWindow (and
// libLogsPerWindow in all), as the reporter does for refusals.
type libLog struct {
	next  slog.Handler
	quota *quota
}

var _ slog.Handler = libLog{}

func newLibLog(next slog.Handler) libLog {
	return libLog{next: next, quota: &quota{window: libLogWindow, perKey: libLogsPerKey, total: libLogsPerWindow}}
}

// Enabled implements slog.Handler.
func (h libLog) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h libLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	var client, reason string
	r.Attrs(func(a slog.Attr) bool {
		a = scrub(a)
		switch a.Key {
		case "client":
			client = a.Value.String()
		case "error":
			reason = a.Value.String()
		}
		out.AddAttrs(a)
		return true
	})
	if r.Level >= slog.LevelInfo && !h.quota.allow(client+"\x00"+r.Message+"\x00"+reason, r.Time) {
		return nil
	}
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h libLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	for i := range attrs {
		attrs[i] = scrub(attrs[i])
	}
	return libLog{next: h.next.WithAttrs(attrs), quota: h.quota}
}

// WithGroup implements slog.Handler.
func (h libLog) WithGroup(name string) slog.Handler {
	return libLog{next: h.next.WithGroup(name), quota: h.quota}
}

// scrub makes an attribute safe to log: a packet becomes its summary,
// bytes their length, long text is clipped.
func scrub(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, clip(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i := range g {
			out[i] = scrub(g[i])
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
	default:
		return a
	}
	switch x := v.Any().(type) {
	case packets.Packet:
		return slog.String(a.Key, summary(&x))
	case *packets.Packet:
		if x == nil {
			return a
		}
		return slog.String(a.Key, summary(x))
	case []byte:
		return slog.Int(a.Key+"_bytes", len(x))
	case error:
		return slog.String(a.Key, clip(x.Error()))
	case fmt.Stringer:
		return slog.String(a.Key, clip(x.String()))
	}
	return slog.String(a.Key, clip(fmt.Sprint(v.Any())))
}

// summary describes a packet without its payload or credentials.
func summary(pk *packets.Packet) string {
	name, ok := packets.PacketNames[pk.FixedHeader.Type]
	if !ok {
		name = fmt.Sprintf("type %d", pk.FixedHeader.Type)
	}
	if pk.FixedHeader.Type != packets.Publish {
		return name
	}
	return fmt.Sprintf("%s topic=%q qos=%d id=%d payload_bytes=%d", name, clip(pk.TopicName), pk.FixedHeader.Qos, pk.PacketID, len(pk.Payload))
}

// clip bounds text from a client for a log line.
func clip(s string) string {
	if len(s) <= maxLogText {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", truncateUTF8(s, maxLogText), len(s))
}

// truncateUTF8 returns at most n bytes of s, not splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
