package mqtt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
)

// The server's own credentials in these tests.
const (
	serverUser     = "lifelined"
	serverPassword = "server-secret"
	serverID       = mqtt.ServerClientPrefix + "test"
)

// units is an Authenticator over a map of unit id to password. (dispatch
// keeps hashes; the tests need not.)
type units struct {
	passwords map[string]string
	calls     atomic.Int64
}

func (u *units) AuthenticateUnit(_ context.Context, unit, password string) bool {
	u.calls.Add(1)
	want, ok := u.passwords[unit]
	return ok && password == want
}

// denial is one call of Auth.OnDenied.
type denial struct{ Client, Reason, Topic string }

// secure is a running broker in the mode lifelined runs: Auth on, Ingest
// set to a recording handler.
type secure struct {
	b       *mqtt.Broker
	url     string
	units   *units
	handled *recorder
	metrics *mqtt.Metrics

	mu      sync.Mutex
	denials []denial
}

func startSecure(t *testing.T, configure ...func(*mqtt.BrokerConfig)) *secure {
	t.Helper()
	return startSecureLog(t, testLogger(t), configure...)
}

// startSecureLog is startSecure with the broker's logger.
func startSecureLog(t *testing.T, log *slog.Logger, configure ...func(*mqtt.BrokerConfig)) *secure {
	t.Helper()
	s := &secure{
		units: &units{passwords: map[string]string{
			"U1": "pw-U1", "U2": "pw-U2", "F1": "pw-F1",
			// Units the Authenticator would admit but the broker must not.
			"lifelined-x": "pw-x", "inline": "pw-inline", serverUser: "pw-unit",
		}},
		handled: &recorder{},
		metrics: mqtt.NewMetrics(nil),
	}
	cfg := mqtt.BrokerConfig{
		Auth: &mqtt.Auth{Units: s.units, ServerUser: serverUser, ServerPassword: serverPassword,
			OnDenied: func(client, reason, topic string) {
				s.mu.Lock()
				s.denials = append(s.denials, denial{client, reason, topic})
				s.mu.Unlock()
			}},
		Ingest:  s.handled,
		Metrics: s.metrics,
	}
	for _, f := range configure {
		f(&cfg)
	}
	s.b, _ = runBrokerLog(t, cfg, log)
	s.url = brokerURL(s.b)
	return s
}

func (s *secure) reported() []denial {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.denials)
}

// unit connects as unit with its password.
func (s *secure) unit(t *testing.T, unit string, configure ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	return connect(t, s.url, unit, append([]func(*paho.ClientOptions){login(unit, s.units.passwords[unit])}, configure...)...)
}

// server connects as the server's own client.
func (s *secure) server(t *testing.T, configure ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	return connect(t, s.url, serverID, append([]func(*paho.ClientOptions){login(serverUser, serverPassword)}, configure...)...)
}

// nothingHandled checks that no message reached the Ingest handler.
func (s *secure) nothingHandled(t *testing.T) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	if n := s.handled.callCount(); n != 0 {
		t.Errorf("the handler saw %d messages: %v", n, s.handled.messages())
	}
}

// wantDenied checks the metric and the report of one refusal. An empty
// want.Client matches any: mochi names a client that sent none.
func (s *secure) wantDenied(t *testing.T, before float64, want denial) {
	t.Helper()
	waitFor(t, fmt.Sprintf("OnDenied(%v)", want), func() bool {
		return slices.ContainsFunc(s.reported(), func(d denial) bool {
			return d.Reason == want.Reason && d.Topic == want.Topic && (want.Client == "" || d.Client == want.Client)
		})
	})
	if got := s.metrics.Denied(want.Reason); got != before+1 {
		t.Errorf("lifeline_mqtt_denied_total{reason=%q} = %v, want %v", want.Reason, got, before+1)
	}
}

func TestBrokerAuthConnect(t *testing.T) {
	checkLeaks(t)
	online := telemetry.Topic("U1", telemetry.KindOnline)
	tests := []struct {
		name     string
		id       string
		opts     func(*paho.ClientOptions)
		reason   string // "" admits
		topic    string
		noAuthDB bool // refused before the Authenticator is asked
	}{
		{name: "unit with its credentials and will", id: "U1",
			opts: func(o *paho.ClientOptions) { login("U1", "pw-U1")(o); o.SetWill(online, `"offline"`, 1, true) }},
		{name: "server with its credentials", id: serverID, opts: login(serverUser, serverPassword)},
		{name: "anonymous", id: "U1", opts: func(*paho.ClientOptions) {}, reason: mqtt.DeniedAnonymous, noAuthDB: true},
		{name: "wrong password", id: "U1", opts: login("U1", "guess"), reason: mqtt.DeniedCredentials},
		{name: "no password", id: "U1", opts: login("U1", ""), reason: mqtt.DeniedCredentials, noAuthDB: true},
		{name: "unknown unit", id: "U9", opts: login("U9", "pw-U9"), reason: mqtt.DeniedCredentials},
		{name: "client id of another unit", id: "U2", opts: login("U1", "pw-U1"), reason: mqtt.DeniedClientID, noAuthDB: true},
		{name: "no client id", id: "", opts: login("U1", "pw-U1"), reason: mqtt.DeniedClientID, noAuthDB: true},
		{name: "will on another unit's topic", id: "U1", reason: mqtt.DeniedWill, noAuthDB: true,
			topic: telemetry.Topic("U2", telemetry.KindOnline),
			opts: func(o *paho.ClientOptions) {
				login("U1", "pw-U1")(o)
				o.SetWill(telemetry.Topic("U2", telemetry.KindOnline), `"offline"`, 1, true)
			}},
		{name: "will on its own gps topic", id: "U1", reason: mqtt.DeniedWill, noAuthDB: true,
			topic: telemetry.Topic("U1", telemetry.KindGPS),
			opts: func(o *paho.ClientOptions) {
				login("U1", "pw-U1")(o)
				o.SetWill(telemetry.Topic("U1", telemetry.KindGPS), `{"seq":1}`, 1, false)
			}},
		{name: "unit named like the server's clients", id: "lifelined-x", opts: login("lifelined-x", "pw-x"),
			reason: mqtt.DeniedCredentials, noAuthDB: true},
		{name: "unit named as the server", id: serverUser, opts: login(serverUser, "pw-unit"),
			reason: mqtt.DeniedClientID, noAuthDB: true},
		{name: "the broker's inline client", id: "inline", opts: login("inline", "pw-inline"),
			reason: mqtt.DeniedClientID, noAuthDB: true},
		{name: "server with a wrong password", id: serverID, opts: login(serverUser, "guess"), reason: mqtt.DeniedCredentials},
		{name: "server with a unit's client id", id: "U1", opts: login(serverUser, serverPassword), reason: mqtt.DeniedClientID},
		{name: "server with a will", id: serverID, reason: mqtt.DeniedWill, topic: "ems/v1/server",
			opts: func(o *paho.ClientOptions) {
				login(serverUser, serverPassword)(o)
				o.SetWill("ems/v1/server", "gone", 1, false)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSecure(t)
			before := s.metrics.Denied(tt.reason)
			_, err := dial(t, s.url, tt.id, tt.opts)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := s.reported(); len(got) != 0 {
					t.Errorf("reported %v for an admitted client", got)
				}
				return
			}
			if err == nil {
				t.Fatal("connected, want refused")
			}
			s.wantDenied(t, before, denial{tt.id, tt.reason, tt.topic})
			if n := s.units.calls.Load(); tt.noAuthDB && n != 0 {
				t.Errorf("the Authenticator was asked %d times; the cheap checks come first", n)
			}
			s.nothingHandled(t)
		})
	}
}

// TestBrokerAuthTakeover checks that no connection can take a unit's
// session but the unit's own.
func TestBrokerAuthTakeover(t *testing.T) {
	checkLeaks(t)
	s := startSecure(t)
	var lost <-chan error
	victim := s.unit(t, "U2", func(o *paho.ClientOptions) { lost = onLost(o) })

	attacks := []struct {
		name string
		opts func(*paho.ClientOptions)
	}{
		{"another unit's credentials", login("U1", "pw-U1")},
		{"no credentials", func(*paho.ClientOptions) {}},
		{"a wrong password", login("U2", "guess")},
		{"the server's credentials", login(serverUser, serverPassword)},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			if _, err := dial(t, s.url, "U2", a.opts); err == nil {
				t.Fatal("connected with client id U2")
			}
			select {
			case err := <-lost:
				t.Fatalf("the unit's own connection was dropped: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
	s.nothingHandled(t)
	publish(t, victim, telemetry.Topic("U2", telemetry.KindGPS), []byte(`{"seq":1}`))
	s.handled.waitMessages(t, 1)

	// The unit itself reconnecting takes its session over, as MQTT says.
	s.unit(t, "U2")
	select {
	case <-lost:
	case <-time.After(waitLong):
		t.Error("a second connection of the unit did not take its session over")
	}
}

// TestBrokerAuthPublish checks what each client may publish: only a
// unit's own uplink, only the server's commands; nothing denied is
// handled.
func TestBrokerAuthPublish(t *testing.T) {
	checkLeaks(t)
	gps := `{"seq":1,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97}`
	tests := []struct {
		name   string
		server bool // publish as the server, else as U1
		topic  string
		qos    byte
		allow  bool
		silent bool
	}{
		{name: "unit: its own gps", topic: telemetry.Topic("U1", telemetry.KindGPS), qos: 1, allow: true},
		{name: "unit: its own online, retained", topic: telemetry.Topic("U1", telemetry.KindOnline), qos: 1, allow: true},
		{name: "unit: another unit's gps", topic: telemetry.Topic("U2", telemetry.KindGPS), qos: 1},
		{name: "unit: another unit's gps at QoS 0", topic: telemetry.Topic("U2", telemetry.KindGPS), qos: 0},
		{name: "unit: another unit's status", topic: telemetry.Topic("U2", telemetry.KindStatus), qos: 1},
		{name: "unit: its own cmd", topic: telemetry.Topic("U1", telemetry.KindCmd), qos: 1},
		{name: "unit: another unit's cmd", topic: telemetry.Topic("U2", telemetry.KindCmd), qos: 1},
		{name: "unit: an unknown kind", topic: telemetry.Prefix + "U1/debug", qos: 1},
		{name: "unit: a deeper topic", topic: telemetry.Prefix + "U1/gps/x", qos: 1},
		{name: "unit: outside the units", topic: "ems/v1/incidents", qos: 1},
		// mochi drops a publish to a $ topic before any ACL check, with
		// neither a PUBACK nor a report.
		{name: "unit: $SYS", topic: "$SYS/broker/version", qos: 1, silent: true},
		{name: "server: a unit's gps", server: true, topic: telemetry.Topic("U1", telemetry.KindGPS), qos: 1},
		{name: "server: a cmd with no unit", server: true, topic: telemetry.Prefix + "/cmd", qos: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSecure(t)
			var c paho.Client
			var lost <-chan error
			if tt.server {
				c = s.server(t, func(o *paho.ClientOptions) { lost = onLost(o) })
			} else {
				c = s.unit(t, "U1", func(o *paho.ClientOptions) { lost = onLost(o) })
			}
			before := s.metrics.Denied(mqtt.DeniedPublish)
			tok := c.Publish(tt.topic, tt.qos, tt.topic == telemetry.Topic("U1", telemetry.KindOnline), gps)
			if tt.silent {
				tok.WaitTimeout(300 * time.Millisecond)
			} else {
				tok.WaitTimeout(waitLong)
			}

			if tt.allow {
				if tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
				if got, want := s.handled.waitMessages(t, 1), []message{{tt.topic, gps}}; !slices.Equal(got, want) {
					t.Errorf("handled %v, want %v", got, want)
				}
				return
			}
			if tt.silent {
				if tok.WaitTimeout(0) && tok.Error() == nil {
					t.Error("PUBACK for a publish to $SYS")
				}
				s.nothingHandled(t)
				return
			}
			client := "U1"
			if tt.server {
				client = serverID
			}
			s.wantDenied(t, before, denial{client, mqtt.DeniedPublish, tt.topic})
			if tt.qos > 0 {
				// MQTT 3.1.1 has no negative PUBACK: mochi ends the connection.
				select {
				case <-lost:
				case <-time.After(waitLong):
					t.Error("a denied QoS 1 publish did not end the connection")
				}
			}
			s.nothingHandled(t)
		})
	}
}

// TestBrokerAuthSubscribe checks what each client may subscribe to, and
// that a denied subscription delivers nothing.
func TestBrokerAuthSubscribe(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name   string
		server bool
		filter string
		allow  bool
	}{
		{name: "unit: its own cmd", filter: telemetry.Topic("U1", telemetry.KindCmd), allow: true},
		{name: "unit: everything", filter: "#"},
		{name: "unit: every unit's gps", filter: telemetry.Prefix + "+/gps"},
		{name: "unit: the whole uplink", filter: telemetry.UplinkFilter},
		{name: "unit: another unit's cmd", filter: telemetry.Topic("U2", telemetry.KindCmd)},
		{name: "unit: another unit's gps", filter: telemetry.Topic("U2", telemetry.KindGPS)},
		{name: "unit: its own topics", filter: telemetry.Prefix + "U1/+"},
		{name: "unit: $SYS", filter: "$SYS/#"},
		{name: "unit: a shared uplink", filter: "$share/g/" + telemetry.UplinkFilter},
		{name: "unit: its own cmd, shared", filter: "$share/g/" + telemetry.Topic("U1", telemetry.KindCmd)},
		{name: "server: the uplink", server: true, filter: telemetry.UplinkFilter, allow: true},
		{name: "server: the uplink, shared", server: true, filter: "$share/lifelined/" + telemetry.UplinkFilter, allow: true},
		{name: "server: one unit", server: true, filter: telemetry.Prefix + "U2/+", allow: true},
		{name: "server: everything", server: true, filter: "#"},
		{name: "server: below the units", server: true, filter: telemetry.Prefix + "#"},
		{name: "server: $SYS", server: true, filter: "$SYS/#"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSecure(t)
			received := make(chan message, 16)
			var c paho.Client
			if tt.server {
				c = s.server(t)
			} else {
				c = s.unit(t, "U1")
			}
			before := s.metrics.Denied(mqtt.DeniedSubscribe)
			tok := c.Subscribe(tt.filter, 1, func(_ paho.Client, m paho.Message) {
				received <- message{m.Topic(), string(m.Payload())}
			})
			if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			code := subackCode(t, tok, tt.filter)
			if !tt.allow {
				if code != 0x80 {
					t.Fatalf("SUBACK return code %#x, want the failure code 0x80", code)
				}
				client := "U1"
				if tt.server {
					client = serverID
				}
				s.wantDenied(t, before, denial{client, mqtt.DeniedSubscribe, tt.filter})
			} else if code != 1 {
				t.Fatalf("SUBACK return code %#x, want QoS 1 granted", code)
			}

			// U2 reports and is sent a command; only an allowed subscription
			// may see either.
			u2 := s.unit(t, "U2")
			publish(t, u2, telemetry.Topic("U2", telemetry.KindGPS), []byte(`{"seq":1}`))
			if err := s.b.Send(context.Background(), "U2", telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1"}); err != nil {
				t.Fatal(err)
			}
			if !tt.allow {
				select {
				case m := <-received:
					t.Errorf("a denied subscription received %v", m)
				case <-time.After(200 * time.Millisecond):
				}
			}
		})
	}
}

// subackCode returns the return code the broker gave filter. paho keys
// the result by the filter without its $share/{group}/ prefix.
func subackCode(t *testing.T, tok paho.Token, filter string) byte {
	t.Helper()
	result := tok.(*paho.SubscribeToken).Result()
	if code, ok := result[filter]; ok {
		return code
	}
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			if code, ok := result[f]; ok {
				return code
			}
		}
	}
	t.Fatalf("no SUBACK code for %s in %v", filter, result)
	return 0
}

// TestBrokerAuthPositive is the path lifelined and its terminals take:
// a unit reports and is commanded; the server's client reads the uplink.
func TestBrokerAuthPositive(t *testing.T) {
	checkLeaks(t)
	s := startSecure(t)
	online := telemetry.Topic("U1", telemetry.KindOnline)

	// Two server clients: one subscribed plainly, one through a shared
	// subscription, as several lifelined instances would.
	uplink := make(chan message, 16)
	srv := s.server(t)
	for i, f := range []string{telemetry.UplinkFilter, "$share/lifelined/" + telemetry.UplinkFilter} {
		c := srv
		if i > 0 {
			c = connect(t, s.url, mqtt.ServerClientPrefix+"shared", login(serverUser, serverPassword))
		}
		if tok := c.Subscribe(f, 1, func(_ paho.Client, m paho.Message) {
			uplink <- message{m.Topic(), string(m.Payload())}
		}); !tok.WaitTimeout(waitLong) || tok.Error() != nil || subackCode(t, tok, f) != 1 {
			t.Fatalf("server subscribe %s: %v", f, tok.Error())
		}
	}

	commands := make(chan message, 16)
	u1 := s.unit(t, "U1", func(o *paho.ClientOptions) { o.SetWill(online, `"offline"`, 1, true) })
	if tok := u1.Subscribe(telemetry.Topic("U1", telemetry.KindCmd), 1, func(_ paho.Client, m paho.Message) {
		commands <- message{m.Topic(), string(m.Payload())}
	}); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("unit subscribe: %v", tok.Error())
	}

	gps := message{telemetry.Topic("U1", telemetry.KindGPS), `{"seq":1,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97}`}
	publish(t, u1, gps.Topic, []byte(gps.Payload))
	if got := s.handled.waitMessages(t, 1); !slices.Equal(got, []message{gps}) {
		t.Errorf("handled %v, want %v", got, []message{gps})
	}
	for range 2 {
		select {
		case m := <-uplink:
			if m != gps {
				t.Errorf("server received %v, want %v", m, gps)
			}
		case <-time.After(waitLong):
			t.Fatal("a server client's subscription received nothing")
		}
	}

	// Commands: through the broker's inline client, and from the server's
	// own MQTT client as on an external broker.
	cmd := telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1"}
	payload, _ := telemetry.EncodeCommand(cmd)
	if err := s.b.Send(context.Background(), "U1", cmd); err != nil {
		t.Fatal(err)
	}
	publish(t, srv, telemetry.Topic("U1", telemetry.KindCmd), payload)
	for range 2 {
		select {
		case m := <-commands:
			if want := (message{telemetry.Topic("U1", telemetry.KindCmd), string(payload)}); m != want {
				t.Errorf("unit received %v, want %v", m, want)
			}
		case <-time.After(waitLong):
			t.Fatal("the unit received no command")
		}
	}
	if got := s.reported(); len(got) != 0 {
		t.Errorf("denied %v on the allowed path", got)
	}
}

func TestBrokerAuthPacketTooLarge(t *testing.T) {
	checkLeaks(t)
	s := startSecure(t, func(c *mqtt.BrokerConfig) { c.MaxPacketSize = 1024 })
	var lost <-chan error
	u1 := s.unit(t, "U1", func(o *paho.ClientOptions) { lost = onLost(o) })
	u1.Publish(telemetry.Topic("U1", telemetry.KindGPS), 1, false, strings.Repeat("x", 2048))
	select {
	case <-lost:
	case <-time.After(waitLong):
		t.Fatal("the broker kept a client that sent an oversized packet")
	}
	s.wantDenied(t, 0, denial{"U1", mqtt.DeniedPacketTooLarge, ""})
	s.nothingHandled(t)
}

// TestBrokerAuthFlood checks that one unit publishing as fast as it can
// gets no more than its rate to the handler, is disconnected when it keeps
// on, and does not slow other units down.
func TestBrokerAuthFlood(t *testing.T) {
	checkLeaks(t)
	const limit, burst = 20, 20
	s := startSecure(t, func(c *mqtt.BrokerConfig) {
		c.MessageRate, c.MessageBurst, c.FloodTimeout = limit, burst, time.Second
	})
	var lost <-chan error
	flooder := s.unit(t, "F1", func(o *paho.ClientOptions) { lost = onLost(o) })
	other := s.unit(t, "U2")

	start := time.Now()
	floodTopic := telemetry.Topic("F1", telemetry.KindGPS)
	for i := range 2000 {
		flooder.Publish(floodTopic, 1, false, fmt.Sprintf(`{"seq":%d}`, i))
	}

	// Meanwhile another unit reports at its usual pace, unhindered.
	var slowest time.Duration
	for i := range 8 {
		t0 := time.Now()
		publish(t, other, telemetry.Topic("U2", telemetry.KindGPS), fmt.Appendf(nil, `{"seq":%d}`, i))
		slowest = max(slowest, time.Since(t0))
		time.Sleep(100 * time.Millisecond)
	}
	if slowest > time.Second {
		t.Errorf("another unit waited %v for a PUBACK during the flood", slowest)
	}

	select {
	case <-lost:
	case <-time.After(waitLong):
		t.Fatal("the flooding unit was not disconnected")
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond)

	var fromFlooder, fromOther int
	for _, m := range s.handled.messages() {
		if m.Topic == floodTopic {
			fromFlooder++
		} else {
			fromOther++
		}
	}
	if allowance := burst + int(limit*elapsed.Seconds()) + 1; fromFlooder > allowance || fromFlooder < burst {
		t.Errorf("handled %d messages of the flood in %v, want %d to %d", fromFlooder, elapsed, burst, allowance)
	}
	if fromOther != 8 {
		t.Errorf("handled %d messages of the other unit, want 8", fromOther)
	}
	if got := s.metrics.Denied(mqtt.DeniedFlood); got != 1 {
		t.Errorf("lifeline_mqtt_denied_total{reason=flood} = %v, want 1", got)
	}
	if s.metrics.Throttled() == 0 {
		t.Error("lifeline_mqtt_throttled_total = 0 during a flood")
	}
	if !slices.Contains(s.reported(), denial{"F1", mqtt.DeniedFlood, floodTopic}) {
		t.Errorf("reported %v, want the flood", s.reported())
	}
	t.Logf("flood: %d handled in %v, then disconnected", fromFlooder, elapsed)
}

// TestBrokerAuthReportsLimited checks that a client cannot flood the audit
// log through OnDenied, while the metric counts every refusal.
func TestBrokerAuthReportsLimited(t *testing.T) {
	checkLeaks(t)
	s := startSecure(t)
	u1 := s.unit(t, "U1")
	filters := map[string]byte{}
	for i := range 30 {
		filters[telemetry.Prefix+fmt.Sprintf("X%d/cmd", i)] = 1
	}
	if tok := u1.SubscribeMultiple(filters, nil); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if got := s.metrics.Denied(mqtt.DeniedSubscribe); got != 30 {
		t.Errorf("lifeline_mqtt_denied_total{reason=subscribe} = %v, want 30", got)
	}
	if n := len(s.reported()); n == 0 || n > 5 {
		t.Errorf("OnDenied called %d times for 30 refusals of one client, want 1 to 5", n)
	}
}

func TestBrokerTLS(t *testing.T) {
	checkLeaks(t)
	cert, pool := selfSigned(t)
	s := startSecure(t, func(c *mqtt.BrokerConfig) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	sslURL := "ssl://" + s.b.Addr().String()
	trusting := func(o *paho.ClientOptions) { o.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}) }

	t.Run("unit over TLS", func(t *testing.T) {
		c := connect(t, sslURL, "U1", login("U1", "pw-U1"), trusting)
		gps := message{telemetry.Topic("U1", telemetry.KindGPS), `{"seq":1}`}
		publish(t, c, gps.Topic, []byte(gps.Payload))
		if got := s.handled.waitMessages(t, 1); !slices.Equal(got, []message{gps}) {
			t.Errorf("handled %v, want %v", got, []message{gps})
		}
	})
	t.Run("plain TCP refused", func(t *testing.T) {
		if _, err := dial(t, s.url, "U2", login("U2", "pw-U2")); err == nil {
			t.Error("a plain TCP client connected to the TLS listener")
		}
	})
	t.Run("untrusted certificate refused by the client", func(t *testing.T) {
		if _, err := dial(t, sslURL, "U2", login("U2", "pw-U2"), func(o *paho.ClientOptions) {
			o.SetTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})
		}); err == nil {
			t.Error("connected without trusting the broker's certificate")
		}
	})
}

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lifeline test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestNewBrokerInvalidAccess(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name string
		cfg  mqtt.BrokerConfig
	}{
		{"server user without a password", mqtt.BrokerConfig{Auth: &mqtt.Auth{Units: &units{}, ServerUser: "lifelined"}}},
		{"server password without a user", mqtt.BrokerConfig{Auth: &mqtt.Auth{Units: &units{}, ServerPassword: "x"}}},
		{"nobody admitted", mqtt.BrokerConfig{Auth: &mqtt.Auth{}}},
		{"a hook that would widen Auth", mqtt.BrokerConfig{Auth: &mqtt.Auth{Units: &units{}},
			Hooks: []mochi.Hook{&credentials{user: "U1", password: "secret"}}}},
		{"TLS without a certificate", mqtt.BrokerConfig{TLS: &tls.Config{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Listen = "127.0.0.1:0"
			b, err := mqtt.NewBroker(tt.cfg, testLogger(t))
			if err == nil {
				b.Close()
				t.Fatal("NewBroker succeeded")
			}
		})
	}
}
