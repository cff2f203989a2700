package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
)

// TestBrokerIngestAcknowledgesAfterHandle checks that the PUBACK a terminal
// gets comes after Handle returned: until then the publisher waits.
func TestBrokerIngestAcknowledgesAfterHandle(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	var returned atomic.Int64 // when Handle returned, in UnixNano
	h := handlerFunc(func(context.Context, string, []byte) error {
		<-release
		returned.Store(time.Now().UnixNano())
		return nil
	})
	b := startBroker(t, mqtt.BrokerConfig{Ingest: h})
	pub := connect(t, brokerURL(b), "U1")

	tok := pub.Publish(telemetry.Topic("U1", telemetry.KindGPS), 1, false, `{"seq":1}`)
	if tok.WaitTimeout(300 * time.Millisecond) {
		t.Fatalf("PUBACK while Handle was still running (%v)", tok.Error())
	}
	close(release)
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	acked := time.Now().UnixNano()
	if r := returned.Load(); r == 0 || r > acked {
		t.Errorf("Handle returned at %d, the PUBACK completed at %d: want Handle first", r, acked)
	}
}

// TestBrokerIngestRetriesBriefFailure checks that a Handler failing for a
// moment only delays the PUBACK: the broker retries within IngestTimeout,
// and nothing is fanned out until the message is handled.
func TestBrokerIngestRetriesBriefFailure(t *testing.T) {
	checkLeaks(t)
	var failing atomic.Bool
	failing.Store(true)
	rec := &recorder{fail: func(string, []byte) error {
		if failing.Load() {
			return errRefuse
		}
		return nil
	}}
	metrics := mqtt.NewMetrics(nil)
	b := startBroker(t, mqtt.BrokerConfig{Ingest: rec, IngestTimeout: waitLong, Metrics: metrics})
	fannedOut := watchUplink(t, brokerURL(b))

	var lost <-chan error
	pub := connect(t, brokerURL(b), "U1", func(o *paho.ClientOptions) { lost = onLost(o) })
	want := message{telemetry.Topic("U1", telemetry.KindStatus), `{"ts":"2026-11-23T08:00:01Z","status":"on_scene"}`}
	tok := pub.Publish(want.Topic, 1, false, want.Payload)
	if tok.WaitTimeout(500 * time.Millisecond) {
		t.Fatalf("PUBACK while Handle was failing (%v)", tok.Error())
	}
	if got := rec.callCount(); got < 2 {
		t.Errorf("Handle called %d times while failing, want retries", got)
	}
	select {
	case m := <-fannedOut:
		t.Fatalf("a message not handled reached a subscriber: %v", m)
	default:
	}

	failing.Store(false)
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	if got := rec.messages(); !slices.Equal(got, []message{want}) {
		t.Errorf("handled %v, want %v once", got, want)
	}
	if m := <-fannedOut; m != want {
		t.Errorf("fanned out %v, want %v", m, want)
	}
	select {
	case err := <-lost:
		t.Errorf("the publisher was disconnected (%v); a brief failure should only delay its PUBACK", err)
	default:
	}
	if got := metrics.IngestErrors(); got != 0 {
		t.Errorf("lifeline_mqtt_ingest_errors_total = %v, want 0: the message was handled", got)
	}
}

// TestBrokerIngestFailureRetransmits checks that a message the Handler
// keeps failing on past IngestTimeout is neither acknowledged nor fanned
// out, that the publisher is disconnected, and that the retransmission of
// its persistent session after it reconnects is handled and acknowledged.
func TestBrokerIngestFailureRetransmits(t *testing.T) {
	checkLeaks(t)
	var failing atomic.Bool
	failing.Store(true)
	rec := &recorder{fail: func(string, []byte) error {
		if failing.Load() {
			return errRefuse
		}
		return nil
	}}
	audit := newAckAudit(func(topic string, payload []byte) bool {
		return slices.Contains(rec.messages(), message{topic, string(payload)})
	})
	metrics := mqtt.NewMetrics(nil)
	b := startBroker(t, mqtt.BrokerConfig{Ingest: rec, IngestTimeout: 200 * time.Millisecond,
		Metrics: metrics, Hooks: []mochi.Hook{audit}})
	fannedOut := watchUplink(t, brokerURL(b))

	var lost <-chan error
	pub := connect(t, brokerURL(b), "U1", func(o *paho.ClientOptions) {
		o.SetCleanSession(false)
		lost = onLost(o)
	})
	want := message{telemetry.Topic("U1", telemetry.KindStatus), `{"ts":"2026-11-23T08:00:01Z","status":"on_scene"}`}
	tok := pub.Publish(want.Topic, 1, false, want.Payload)
	select {
	case <-lost:
	case <-time.After(waitLong):
		t.Fatal("the publisher was not disconnected after its message was refused")
	}
	if tok.WaitTimeout(100 * time.Millisecond) {
		t.Fatalf("the refused publish completed (%v)", tok.Error())
	}
	if got := metrics.IngestErrors(); got != 1 {
		t.Errorf("lifeline_mqtt_ingest_errors_total = %v, want 1", got)
	}
	if acks, _ := audit.result(); acks != 0 {
		t.Errorf("the broker wrote %d PUBACKs for a message it could not handle", acks)
	}
	select {
	case m := <-fannedOut:
		t.Fatalf("a refused message reached a subscriber: %v", m)
	default:
	}

	// The terminal reconnects with its session; paho resends what was not
	// acknowledged.
	failing.Store(false)
	if tok := pub.Connect(); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("reconnect: %v", tok.Error())
	}
	rec.waitMessages(t, 1)
	waitFor(t, "the PUBACK", func() bool { acks, _ := audit.result(); return acks == 1 })
	if acks, early := audit.result(); acks != 1 || len(early) != 0 {
		t.Errorf("PUBACKs %d (%d before the message was handled), want 1 after", acks, len(early))
	}
	if got := rec.messages(); !slices.Equal(got, []message{want}) {
		t.Errorf("handled %v, want %v once", got, want)
	}
	if m := <-fannedOut; m != want {
		t.Errorf("fanned out %v, want %v", m, want)
	}
}

// watchUplink subscribes to the whole uplink, as an Ingester would, and
// returns what arrives.
func watchUplink(t *testing.T, url string) <-chan message {
	t.Helper()
	got := make(chan message, 64)
	sub := connect(t, url, "lifelined-watch")
	if tok := sub.Subscribe(telemetry.UplinkFilter, 1, func(_ paho.Client, m paho.Message) {
		got <- message{m.Topic(), string(m.Payload())}
	}); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return got
}

// TestBrokerIngestConcurrentPublishers publishes from many terminals at
// once, as fast as they can, and checks on the broker's side that every
// PUBACK it wrote followed a successful Handle of that message, and that in
// the end every message was handled.
//
// paho's tokens cannot tell: after a reconnect paho completes the original
// tokens of the publishes it resends, with no error and before any PUBACK
// (eclipse-paho/paho.mqtt.golang#563), and it fails the token of a publish
// whose write broke while keeping the message to resend. So the PUBACKs
// are audited by a hook, and the tokens are only checked to complete.
func TestBrokerIngestConcurrentPublishers(t *testing.T) {
	const publishers, each = 24, 150
	tests := []struct {
		name string
		// fails is how many times Handle fails on the first attempts of
		// every 50th message.
		fails       int
		exactlyOnce bool // else at least once: some were refused and resent
	}{
		{name: "all handled", exactlyOnce: true},
		{name: "handler fails briefly", fails: 1, exactlyOnce: true},
		{name: "handler fails past the timeout", fails: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			h := &tally{fails: func(seq int) int {
				if seq%50 == 7 {
					return tt.fails
				}
				return 0
			}, seen: map[string]int{}}
			audit := newAckAudit(func(topic string, payload []byte) bool { return h.handled(topic, payload) })
			// Three failures take 50+100+200ms of retries: past 200ms.
			metrics := mqtt.NewMetrics(nil)
			b := startBroker(t, mqtt.BrokerConfig{Ingest: h, IngestTimeout: 200 * time.Millisecond,
				MessageRate: rate.Inf, Metrics: metrics, Hooks: []mochi.Hook{audit}})

			var wg sync.WaitGroup
			var failed atomic.Int64
			errs := make(chan error, publishers*each)
			for p := range publishers {
				unit := fmt.Sprintf("U%02d", p)
				pub := connect(t, brokerURL(b), unit, func(o *paho.ClientOptions) {
					o.SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond)
				})
				wg.Go(func() {
					topic := telemetry.Topic(unit, telemetry.KindGPS)
					toks := make([]paho.Token, each)
					for i := range each {
						toks[i] = pub.Publish(topic, 1, false, payloadSeq(i))
					}
					for i, tok := range toks {
						switch {
						case !tok.WaitTimeout(2 * waitLong):
							errs <- fmt.Errorf("%s seq %d: the publish never completed", unit, i)
						case tok.Error() != nil:
							failed.Add(1) // paho keeps it and resends it
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}

			waitFor(t, "every message handled", func() bool { return h.distinct() == publishers*each })
			for p := range publishers {
				topic := telemetry.Topic(fmt.Sprintf("U%02d", p), telemetry.KindGPS)
				for i := range each {
					if n := h.count(topic, i); n < 1 || (tt.exactlyOnce && n != 1) {
						t.Errorf("%s seq %d handled %d times", topic, i, n)
					}
				}
			}
			acks, early := audit.result()
			for _, e := range early {
				t.Errorf("PUBACK written for a message not handled: %s", e)
			}
			if acks < publishers*each {
				t.Errorf("the broker wrote %d PUBACKs, want at least %d", acks, publishers*each)
			}
			refused := metrics.IngestErrors()
			if tt.exactlyOnce && (failed.Load() > 0 || refused > 0) {
				t.Errorf("paho reported %d publishes failed, the broker refused %v; want none", failed.Load(), refused)
			}
			if !tt.exactlyOnce && refused == 0 {
				t.Error("no message was refused: the test did not test retransmission")
			}
			t.Logf("%d PUBACKs; Handle failed %d times; refused %v; paho reported %d publishes failed",
				acks, h.failures(), refused, failed.Load())
		})
	}
}

// ackAudit is a hook that checks each PUBACK the broker writes: the
// message it acknowledges must have been handled by then. Hooks given in
// BrokerConfig.Hooks run before the Ingest hook, so OnPublish sees each
// packet first, and mochi writes its PUBACK in the same read loop.
type ackAudit struct {
	mochi.HookBase
	handled func(topic string, payload []byte) bool

	mu      sync.Mutex
	current map[string]packets.Packet // by client id: the publish being processed
	acks    int
	early   []string
}

func newAckAudit(handled func(topic string, payload []byte) bool) *ackAudit {
	return &ackAudit{handled: handled, current: map[string]packets.Packet{}}
}

func (a *ackAudit) ID() string { return "test-ack-audit" }

func (a *ackAudit) Provides(b byte) bool { return b == mochi.OnPublish || b == mochi.OnPacketSent }

func (a *ackAudit) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos > 0 {
		a.mu.Lock()
		a.current[cl.ID] = pk
		a.mu.Unlock()
	}
	return pk, nil
}

func (a *ackAudit) OnPacketSent(cl *mochi.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Puback {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.current[cl.ID]
	if !ok || p.PacketID != pk.PacketID {
		return // a PUBACK resent from the session: its message was handled then
	}
	a.acks++
	if !a.handled(p.TopicName, p.Payload) {
		a.early = append(a.early, p.TopicName+" "+string(p.Payload))
	}
}

func (a *ackAudit) result() (acks int, early []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks, slices.Clone(a.early)
}

func payloadSeq(i int) string { return fmt.Sprintf(`{"seq":%d}`, i) }

// tally counts what it handled by topic and payload; fails says how many
// times to fail on a message first.
type tally struct {
	fails func(seq int) int

	mu     sync.Mutex
	seen   map[string]int
	tries  map[string]int
	failed int
}

func (h *tally) Handle(_ context.Context, topic string, payload []byte) error {
	var m struct{ Seq int }
	if err := json.Unmarshal(payload, &m); err != nil {
		return err
	}
	key := topic + " " + string(payload)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tries == nil {
		h.tries = map[string]int{}
	}
	h.tries[key]++
	if h.tries[key] <= h.fails(m.Seq) {
		h.failed++
		return errRefuse
	}
	h.seen[key]++
	return nil
}

func (h *tally) handled(topic string, payload []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[topic+" "+string(payload)] > 0
}

func (h *tally) count(topic string, seq int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[topic+" "+payloadSeq(seq)]
}

func (h *tally) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

func (h *tally) failures() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

// TestBrokerIngestWill checks that a unit's last will reaches the Handler
// when its connection breaks, and does not when the broker shuts down.
func TestBrokerIngestWill(t *testing.T) {
	checkLeaks(t)
	rec := &recorder{}
	b, stop := runBroker(t, mqtt.BrokerConfig{Ingest: rec})
	online := telemetry.Topic("U1", telemetry.KindOnline)

	var conn atomic.Pointer[net.Conn]
	connect(t, brokerURL(b), "U1", func(o *paho.ClientOptions) {
		o.SetWill(online, `"offline"`, 1, true).
			SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				c, err := net.Dial("tcp", u.Host)
				if err == nil {
					conn.Store(&c)
				}
				return c, err
			})
	})
	connect(t, brokerURL(b), "U2", func(o *paho.ClientOptions) {
		o.SetWill(telemetry.Topic("U2", telemetry.KindOnline), `"offline"`, 1, true)
	})

	(*conn.Load()).Close() // the radio link drops, with no DISCONNECT
	got := rec.waitMessages(t, 1)
	if want := []message{{online, `"offline"`}}; !slices.Equal(got, want) {
		t.Fatalf("handled %v, want %v", got, want)
	}

	stop()
	time.Sleep(100 * time.Millisecond)
	if got := rec.messages(); len(got) != 1 {
		t.Errorf("after shutdown handled %v: the broker stopping is not the units going offline", got[1:])
	}
}

func TestBrokerSend(t *testing.T) {
	checkLeaks(t)
	b := startBroker(t, mqtt.BrokerConfig{Ingest: &recorder{}})
	received := make(chan message, 16)
	terminal := connect(t, brokerURL(b), "U1")
	if tok := terminal.Subscribe(telemetry.Topic("U1", telemetry.KindCmd), 1, func(_ paho.Client, m paho.Message) {
		received <- message{m.Topic(), string(m.Payload())}
	}); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if !b.Connected() {
		t.Fatal("Connected() = false while serving")
	}

	tests := []struct {
		name    string
		unit    string
		cmd     telemetry.Command
		wantErr bool
	}{
		{name: "assign", unit: "U1", cmd: telemetry.Command{Type: telemetry.CommandAssign, Assignment: "ASG-1",
			Incident: json.RawMessage(`{"id":"INC-1"}`), Destination: json.RawMessage(`{"lat":29.2,"lon":104.9}`)}},
		{name: "cancel", unit: "U1", cmd: telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1", Reason: "duplicate call"}},
		{name: "unknown type", unit: "U1", cmd: telemetry.Command{Type: "reboot"}, wantErr: true},
		{name: "unit with a topic separator", unit: "a/b", cmd: telemetry.Command{Type: telemetry.CommandCancel}, wantErr: true},
		{name: "unit with a wildcard", unit: "+", cmd: telemetry.Command{Type: telemetry.CommandCancel}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.Send(context.Background(), tt.unit, tt.cmd)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Send succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			payload, _ := telemetry.EncodeCommand(tt.cmd)
			select {
			case got := <-received:
				if want := (message{telemetry.Topic(tt.unit, telemetry.KindCmd), string(payload)}); got != want {
					t.Errorf("terminal received %v, want %v", got, want)
				}
			case <-time.After(waitLong):
				t.Fatal("the terminal received nothing")
			}
		})
	}
}

func TestBrokerSendNotServing(t *testing.T) {
	checkLeaks(t)
	b, err := mqtt.NewBroker(mqtt.BrokerConfig{Listen: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1"}
	if err := b.Send(context.Background(), "U1", cmd); !errors.Is(err, mqtt.ErrNotConnected) || b.Connected() {
		t.Errorf("before Run: Send = %v, Connected = %v; want ErrNotConnected, false", err, b.Connected())
	}
	b.Close()
	if err := b.Send(context.Background(), "U1", cmd); !errors.Is(err, mqtt.ErrNotConnected) || b.Connected() {
		t.Errorf("after Close: Send = %v, Connected = %v; want ErrNotConnected, false", err, b.Connected())
	}
}

// handlerFunc adapts a function to mqtt.Handler.
type handlerFunc func(ctx context.Context, topic string, payload []byte) error

func (f handlerFunc) Handle(ctx context.Context, topic string, payload []byte) error {
	return f(ctx, topic, payload)
}

// BenchmarkBrokerIngest measures QoS 1 messages from one terminal through
// the embedded broker's Ingest hook, PUBACK included: the path a report
// takes when lifelined runs the broker. Unlike BenchmarkIngest it needs no
// window: the publisher's PUBACKs wait for the Handler.
func BenchmarkBrokerIngest(b *testing.B) {
	checkLeaks(b)
	h := &countHandler{window: make(chan struct{}, b.N), target: int64(b.N), reached: make(chan struct{})}
	br := startBroker(b, mqtt.BrokerConfig{Ingest: h, MessageRate: rate.Inf})
	pub := connect(b, brokerURL(br), "U1")
	topic := telemetry.Topic("U1", telemetry.KindGPS)
	payload := []byte(`{"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11,"crs":"wgs84"}`)

	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	var last paho.Token
	for range b.N {
		h.window <- struct{}{}
		last = pub.Publish(topic, 1, false, payload)
	}
	select {
	case <-h.reached:
	case <-time.After(time.Minute):
		b.Fatalf("handled %d of %d", h.n.Load(), b.N)
	}
	last.WaitTimeout(waitLong)
	b.StopTimer()
}
