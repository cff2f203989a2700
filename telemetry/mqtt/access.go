package mqtt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Authenticator checks terminal credentials; dispatch implements it (hashed
// passwords, never plain). It is called from many goroutines at once.
type Authenticator interface {
	AuthenticateUnit(ctx context.Context, unit, password string) bool
}

// ServerClientPrefix begins the client id of every connection made as
// Auth.ServerUser (the Ingester's default id, "lifelined-ingest", has it).
// No unit id may begin with it, so a terminal can never take over the
// server's session.
const ServerClientPrefix = "lifelined-"

// authTimeout bounds one Authenticator call.
const authTimeout = 5 * time.Second

// Auth is who may use the embedded broker, and for what. Everything not
// allowed here is denied:
//
//   - A terminal connects with its unit id as username, the password issued
//     for it (checked by Units) and a client id equal to the username, so no
//     connection can take over another unit's session; a second connection
//     of the same unit takes over its own session, as MQTT says. Its last
//     will, if any, must be on its own online topic. It may publish only to
//     ems/v1/units/{its id}/{gps|video|status|ack|online} and subscribe only
//     to ems/v1/units/{its id}/cmd: never a wildcard, another unit's topic,
//     $SYS or $share.
//   - The server's own client connects as ServerUser with ServerPassword and
//     a client id beginning with ServerClientPrefix, without a will. It
//     alone may subscribe to the uplink, ems/v1/units/+/+ or narrower,
//     directly or as $share/{group}/..., and publish to any unit's cmd
//     topic. (On the embedded broker lifelined needs no client at all: see
//     BrokerConfig.Ingest and Broker.Send.)
//
// A publish that is denied at QoS 1 or 2 ends an MQTT 3.1.1 connection
// (mochi's behaviour: 3.1.1 has no negative PUBACK, and a silent drop after
// a PUBACK would tell the terminal its report was taken); an MQTT 5 client
// gets PUBACK "not authorized" instead. A denied QoS 0 publish is dropped. A
// denied subscription gets the failure return code 0x80 in its SUBACK.
type Auth struct {
	// Units checks unit credentials; nil refuses every unit.
	Units Authenticator
	// ServerUser and ServerPassword admit the server's own client; an empty
	// ServerUser admits none. The name is reserved: no unit can log in as
	// ServerUser, whatever Units says.
	ServerUser, ServerPassword string
	// OnDenied, if set, is told of refusals: client is the client id,
	// reason one of the Denied* constants, topic the topic or filter
	// refused ("" for a connection). It is called at most a few times per
	// client and reason per minute (and a bounded number of times per
	// minute in all),
	// so that a flood cannot flood the audit log it feeds; every refusal is
	// counted in lifeline_mqtt_denied_total. It runs in the broker's
	// goroutine for that client and must not block for long.
	OnDenied func(client, reason, topic string)
}

func (a *Auth) validate() error {
	if a.ServerUser != "" && a.ServerPassword == "" {
		return errors.New("mqtt broker: auth: ServerUser without a ServerPassword")
	}
	if a.ServerUser == "" && a.ServerPassword != "" {
		return errors.New("mqtt broker: auth: ServerPassword without a ServerUser")
	}
	if a.Units == nil && a.ServerUser == "" {
		return errors.New("mqtt broker: auth: neither Units nor ServerUser: nobody could connect")
	}
	return nil
}

// access is the hook that enforces Auth.
type access struct {
	mochi.HookBase
	units      Authenticator
	serverUser []byte
	serverSum  [sha256.Size]byte
	ctx        context.Context // mochi's callbacks carry none; this one ends with the broker
	deny       *reporter
	// deniedPublish, if set, is told of every publish refused.
	deniedPublish func(cl *mochi.Client)
}

var _ mochi.Hook = (*access)(nil)

func newAccess(ctx context.Context, a *Auth, deny *reporter) *access {
	h := &access{units: a.Units, ctx: ctx, deny: deny}
	if a.ServerUser != "" {
		h.serverUser = []byte(a.ServerUser)
		h.serverSum = sha256.Sum256([]byte(a.ServerPassword))
	}
	return h
}

// ID implements mochi.Hook.
func (*access) ID() string { return "lifeline-access" }

// Provides implements mochi.Hook.
func (*access) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

// OnConnectAuthenticate implements mochi.Hook. It runs before mochi looks
// up an existing session, so a refused connection never disturbs one.
func (h *access) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	reason, topic := h.connect(pk)
	if reason == "" {
		return true
	}
	h.deny.report(cl, reason, topic, "username", string(pk.Connect.Username))
	return false
}

// connect returns why the connection is refused, or "". The cheap checks
// come first, so that the Authenticator (a password hash) runs only for a
// connection that is otherwise acceptable.
func (h *access) connect(pk packets.Packet) (reason, topic string) {
	c := pk.Connect
	user, id := string(c.Username), c.ClientIdentifier
	switch {
	case user == "":
		return DeniedAnonymous, ""
	case h.isServer(c.Username):
		if !strings.HasPrefix(id, ServerClientPrefix) {
			return DeniedClientID, ""
		}
		if c.WillFlag {
			return DeniedWill, c.WillTopic
		}
		if sum := sha256.Sum256(c.Password); subtle.ConstantTimeCompare(sum[:], h.serverSum[:]) != 1 {
			return DeniedCredentials, ""
		}
		return "", ""
	case !telemetry.ValidUnitID(user) || strings.HasPrefix(user, ServerClientPrefix):
		return DeniedCredentials, ""
	case id != user:
		return DeniedClientID, ""
	case c.WillFlag && c.WillTopic != telemetry.Topic(user, telemetry.KindOnline):
		return DeniedWill, c.WillTopic
	case len(c.Password) == 0 || h.units == nil:
		return DeniedCredentials, ""
	}
	ctx, cancel := context.WithTimeout(h.ctx, authTimeout)
	defer cancel()
	if !h.units.AuthenticateUnit(ctx, user, string(c.Password)) {
		return DeniedCredentials, ""
	}
	return "", ""
}

// isServer reports whether username is the server's.
func (h *access) isServer(username []byte) bool {
	return h.serverUser != nil && bytes.Equal(username, h.serverUser)
}

// OnACLCheck implements mochi.Hook. mochi calls it for a PUBLISH (write),
// for each filter of a SUBSCRIBE and before delivering each message to a
// client (read), so it must be cheap. Only authenticated clients get here.
func (h *access) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if h.allowed(cl.Properties.Username, topic, write) {
		return true
	}
	reason := DeniedSubscribe
	if write {
		reason = DeniedPublish
	}
	h.deny.report(cl, reason, topic)
	if write && h.deniedPublish != nil {
		h.deniedPublish(cl)
	}
	return false
}

func (h *access) allowed(username []byte, topic string, write bool) bool {
	if h.isServer(username) {
		if write {
			unit, kind, ok := splitUnitTopic(topic)
			return ok && telemetry.ValidUnitID(unit) && kind == string(telemetry.KindCmd)
		}
		return serverReadable(topic)
	}
	unit, kind, ok := splitUnitTopic(topic)
	if !ok || unit != string(username) {
		return false
	}
	if write {
		return telemetry.Kind(kind).Uplink()
	}
	return kind == string(telemetry.KindCmd)
}

// serverReadable reports whether filter (or a topic) lies within the
// uplink filter ems/v1/units/+/+, optionally as a shared subscription.
func serverReadable(filter string) bool {
	if rest, ok := strings.CutPrefix(filter, sharePrefix); ok {
		group, f, ok := strings.Cut(rest, "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") {
			return false
		}
		filter = f
	}
	unit, kind, ok := splitUnitTopic(filter)
	return ok && unit != "" && kind != "" && !strings.Contains(unit, "#") && !strings.Contains(kind, "#")
}

// splitUnitTopic splits ems/v1/units/{unit}/{kind} without checking the
// levels themselves.
func splitUnitTopic(topic string) (unit, kind string, ok bool) {
	rest, ok := strings.CutPrefix(topic, telemetry.Prefix)
	if !ok {
		return "", "", false
	}
	unit, kind, ok = strings.Cut(rest, "/")
	if !ok || strings.Contains(kind, "/") {
		return "", "", false
	}
	return unit, kind, true
}

// Limits of reporter: per window, at most reportsPerClient reports for one
// client id and reason, and reportsPerWindow in all.
const (
	reportWindow     = time.Minute
	reportsPerClient = 5
	reportsPerWindow = 200
)

// reporter counts every refusal and reports (logs and tells OnDenied) as
// many as its quota allows.
type reporter struct {
	log      *slog.Logger
	metrics  *Metrics
	onDenied func(client, reason, topic string)
	quota    quota
}

func newReporter(log *slog.Logger, m *Metrics, onDenied func(client, reason, topic string)) *reporter {
	return &reporter{log: log, metrics: m, onDenied: onDenied,
		quota: quota{window: reportWindow, perKey: reportsPerClient, total: reportsPerWindow}}
}

// report records one refusal of client cl; attrs are logged with it.
// Nothing a client sent is logged whole: the client id, topic and string
// attrs are clipped, and no payload is ever passed here.
func (r *reporter) report(cl *mochi.Client, reason, topic string, attrs ...any) {
	r.metrics.denied.WithLabelValues(reason).Inc()
	if !r.quota.allow(cl.ID+"\x00"+reason, time.Now()) {
		return
	}
	for i, a := range attrs {
		if s, ok := a.(string); ok {
			attrs[i] = clip(s)
		}
	}
	r.log.Warn("mqtt client denied", append([]any{"client", clip(cl.ID), "reason", reason, "topic", clip(topic),
		"remote", cl.Net.Remote}, attrs...)...)
	if r.onDenied != nil {
		r.onDenied(cl.ID, reason, topic)
	}
}

// quota allows at most perKey events per key and total events in all per
// fixed window. Its memory is bounded by total keys.
type quota struct {
	window        time.Duration
	perKey, total int

	mu    sync.Mutex
	start time.Time
	n     int
	keys  map[string]int
}

func (q *quota) allow(key string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.keys == nil || now.Sub(q.start) >= q.window {
		q.start, q.n, q.keys = now, 0, make(map[string]int)
	}
	if q.n >= q.total || q.keys[key] >= q.perKey {
		return false
	}
	q.n++
	q.keys[key]++
	return true
}
