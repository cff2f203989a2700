package mqtt_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/time/rate"

	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
)

// brokerCase is a broker the Ingester must work with.
type brokerCase struct {
	name string
	// url starts or finds the broker for one test.
	url func(t *testing.T) string
	// filter narrows the subscription to one unit on a broker other test
	// runs share; "" keeps the default.
	filter func(unit string) string
}

func brokerCases() []brokerCase {
	return []brokerCase{
		{
			name: "embedded",
			url:  func(t *testing.T) string { return brokerURL(startBroker(t, mqtt.BrokerConfig{})) },
			filter: func(string) string {
				return "" // a fresh broker per test: the default uplink filter
			},
		},
		{
			name: "mosquitto",
			url:  func(t *testing.T) string { return mosquittoURL(t) },
			filter: func(unit string) string {
				return telemetry.Prefix + unit + "/+"
			},
		},
	}
}

// TestIngester runs the same behaviours against the embedded broker and a
// real Mosquitto.
func TestIngester(t *testing.T) {
	behaviours := []struct {
		name string
		run  func(t *testing.T, bc brokerCase)
	}{
		{"delivers uplink", testDelivers},
		{"redelivers unacknowledged after restart", testRedelivers},
		{"sends commands", testSends},
		{"shared subscription splits the stream", testShared},
	}
	for _, bc := range brokerCases() {
		t.Run(bc.name, func(t *testing.T) {
			for _, b := range behaviours {
				t.Run(b.name, func(t *testing.T) {
					checkLeaks(t)
					b.run(t, bc)
				})
			}
		})
	}
}

// setup is one test's broker, unit and a persistent client id.
type setup struct {
	url, unit, filter string
}

func newSetup(t *testing.T, bc brokerCase) setup {
	t.Helper()
	unit := "u" + uniq(t)
	return setup{url: bc.url(t), unit: unit, filter: bc.filter(unit)}
}

// config is an Ingester configuration with its own client id, whose
// persistent session is removed when the test ends.
func (s setup) config(t *testing.T) mqtt.ClientConfig {
	t.Helper()
	id := "li-" + uniq(t)
	forgetSession(t, s.url, id)
	return mqtt.ClientConfig{URL: s.url, ClientID: id, Filter: s.filter}
}

func start(t *testing.T, cfg mqtt.ClientConfig, h mqtt.Handler) (*mqtt.Ingester, func()) {
	t.Helper()
	ing := mqtt.NewIngester(cfg, h, testLogger(t))
	stop := runIngester(t, ing)
	waitConnected(t, ing)
	return ing, stop
}

func sortMessages(ms []message) {
	slices.SortFunc(ms, func(a, b message) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), strings.Compare(a.Payload, b.Payload))
	})
}

func testDelivers(t *testing.T, bc brokerCase) {
	s := newSetup(t, bc)
	rec := &recorder{}
	start(t, s.config(t), rec)
	pub := connect(t, s.url, "lp-"+uniq(t))

	want := []message{
		{telemetry.Topic(s.unit, telemetry.KindGPS), `{"seq":1,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97}`},
		{telemetry.Topic(s.unit, telemetry.KindGPS), `[{"seq":2,"ts":1795420802000,"lat":29.18,"lon":104.97},{"seq":3,"ts":1795420803000,"lat":29.18,"lon":104.97}]`},
		{telemetry.Topic(s.unit, telemetry.KindStatus), `{"ts":"2026-11-23T08:00:01Z","status":"en_route","incident":"INC-1"}`},
		{telemetry.Topic(s.unit, telemetry.KindVideo), `{"ts":"2026-11-23T08:00:01Z","uplink":"5g","cameras":[]}`},
		{telemetry.Topic(s.unit, telemetry.KindAck), `{"assignment":"ASG-1","accepted":true,"reason":""}`},
	}
	for _, m := range want {
		publish(t, pub, m.Topic, []byte(m.Payload))
	}

	got := rec.waitMessages(t, len(want))
	sortMessages(got)
	sortMessages(want)
	if !slices.Equal(got, want) {
		t.Errorf("handled\n%v\nwant\n%v", got, want)
	}
}

func testRedelivers(t *testing.T, bc brokerCase) {
	s := newSetup(t, bc)
	cfg := s.config(t)
	pub := connect(t, s.url, "lp-"+uniq(t))
	topic := telemetry.Topic(s.unit, telemetry.KindGPS)

	// The first instance cannot handle the message, so it never acks it.
	refusing := &recorder{fail: func(string, []byte) error { return errRefuse }}
	_, stop := start(t, cfg, refusing)
	publish(t, pub, topic, []byte(`{"seq":1}`))
	waitFor(t, "the refusing handler to be called", func() bool { return refusing.callCount() >= 1 })
	time.Sleep(200 * time.Millisecond) // no redelivery within the session
	stop()
	if got := refusing.callCount(); got != 1 {
		t.Errorf("refusing handler called %d times in one session, want 1", got)
	}

	// Restarted with the same client id, the session is resumed and the
	// broker redelivers.
	rec := &recorder{}
	_, stop = start(t, cfg, rec)
	got := rec.waitMessages(t, 1)
	if want := []message{{topic, `{"seq":1}`}}; !slices.Equal(got, want) {
		t.Fatalf("after restart handled %v, want %v", got, want)
	}
	stop()

	// That ack reached the broker: a third session gets only new messages.
	rec = &recorder{}
	start(t, cfg, rec)
	publish(t, pub, topic, []byte(`{"seq":2}`))
	got = rec.waitMessages(t, 1)
	time.Sleep(200 * time.Millisecond)
	if got, want := rec.messages(), []message{{topic, `{"seq":2}`}}; !slices.Equal(got, want) {
		t.Errorf("after the ack handled %v, want %v", got, want)
	}
}

func testSends(t *testing.T, bc brokerCase) {
	s := newSetup(t, bc)
	ing, _ := start(t, s.config(t), &recorder{})

	received := make(chan message, 16)
	terminal := connect(t, s.url, "lt-"+uniq(t))
	tok := terminal.Subscribe(telemetry.Topic(s.unit, telemetry.KindCmd), 1, func(_ paho.Client, m paho.Message) {
		received <- message{m.Topic(), string(m.Payload())}
	})
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	tests := []struct {
		name    string
		unit    string
		cmd     telemetry.Command
		wantErr bool
	}{
		{
			name: "assign",
			unit: s.unit,
			cmd: telemetry.Command{Type: telemetry.CommandAssign, Assignment: "ASG-1",
				Incident:    json.RawMessage(`{"id":"INC-1","location":{"lat":29.18,"lon":104.97}}`),
				Destination: json.RawMessage(`{"lat":29.2,"lon":104.9}`)},
		},
		{
			name: "cancel",
			unit: s.unit,
			cmd:  telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1", Reason: "duplicate call"},
		},
		{name: "unknown type", unit: s.unit, cmd: telemetry.Command{Type: "reboot"}, wantErr: true},
		{name: "unit with a topic separator", unit: "a/b", cmd: telemetry.Command{Type: telemetry.CommandCancel}, wantErr: true},
		{name: "unit with a wildcard", unit: "+", cmd: telemetry.Command{Type: telemetry.CommandCancel}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			err := ing.Send(ctx, tt.unit, tt.cmd)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Send succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			payload, err := telemetry.EncodeCommand(tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
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

func testShared(t *testing.T, bc brokerCase) {
	const n = 60
	s := newSetup(t, bc)
	group := "g" + uniq(t)
	recs := []*recorder{{}, {}}
	for _, rec := range recs {
		cfg := s.config(t)
		cfg.Shared = group
		start(t, cfg, rec)
	}

	pub := connect(t, s.url, "lp-"+uniq(t))
	topic := telemetry.Topic(s.unit, telemetry.KindGPS)
	var want []message
	for i := range n {
		m := message{topic, fmt.Sprintf(`{"seq":%d}`, i)}
		want = append(want, m)
		publish(t, pub, m.Topic, []byte(m.Payload))
	}

	total := func() int { return len(recs[0].messages()) + len(recs[1].messages()) }
	waitFor(t, fmt.Sprintf("%d messages across the group", n), func() bool { return total() >= n })
	time.Sleep(200 * time.Millisecond) // let any duplicate arrive

	var got []message
	for i, rec := range recs {
		ms := rec.messages()
		if len(ms) == 0 {
			t.Errorf("ingester %d received none of %d messages", i, n)
		}
		got = append(got, ms...)
	}
	sortMessages(got)
	sortMessages(want)
	if !slices.Equal(got, want) {
		t.Errorf("the group handled %d messages, want each of %d exactly once:\n%v", len(got), n, got)
	}
	t.Logf("split %d/%d", len(recs[0].messages()), len(recs[1].messages()))
}

func TestIngesterWaitsForBroker(t *testing.T) {
	checkLeaks(t)
	addr := freeAddr(t)
	logs := &logCounter{}
	rec := &recorder{}
	ing := mqtt.NewIngester(mqtt.ClientConfig{
		URL:                  "tcp://" + addr,
		ClientID:             "li-wait",
		ConnectTimeout:       time.Second,
		MaxReconnectInterval: 400 * time.Millisecond,
	}, rec, slog.New(logs))
	stop := runIngester(t, ing)

	waitFor(t, "two failed attempts", func() bool { return logs.count("mqtt connect failed") >= 2 })
	if ing.Connected() {
		t.Fatal("Connected with no broker")
	}

	b := startBroker(t, mqtt.BrokerConfig{Listen: addr})
	waitConnected(t, ing)
	pub := connect(t, brokerURL(b), "lp-wait")
	publish(t, pub, telemetry.Topic("U1", telemetry.KindGPS), []byte(`{"seq":1}`))
	rec.waitMessages(t, 1)

	stop()
	if ing.Connected() {
		t.Error("Connected after Run returned")
	}
}

func TestIngesterResubscribesAfterBrokerRestart(t *testing.T) {
	checkLeaks(t)
	cfg := mqtt.BrokerConfig{Listen: freeAddr(t)}
	b, stopBroker := runBroker(t, cfg)
	rec := &recorder{}
	ing, _ := start(t, mqtt.ClientConfig{URL: brokerURL(b), ClientID: "li-restart", MaxReconnectInterval: time.Second}, rec)
	topic := telemetry.Topic("U1", telemetry.KindGPS)

	pub := connect(t, brokerURL(b), "lp-1")
	publish(t, pub, topic, []byte(`{"seq":1}`))
	rec.waitMessages(t, 1)

	// A new broker knows no session: only a new subscription brings messages.
	stopBroker()
	waitFor(t, "the ingester to notice", func() bool { return !ing.Connected() })
	b = startBroker(t, cfg)
	waitConnected(t, ing)
	pub = connect(t, brokerURL(b), "lp-2")
	publish(t, pub, topic, []byte(`{"seq":2}`))
	got := rec.waitMessages(t, 2)
	if want := []message{{topic, `{"seq":1}`}, {topic, `{"seq":2}`}}; !slices.Equal(got, want) {
		t.Errorf("handled %v, want %v", got, want)
	}
}

func TestIngesterRunInvalidConfig(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name string
		cfg  mqtt.ClientConfig
	}{
		{"no URL", mqtt.ClientConfig{}},
		{"unsupported scheme", mqtt.ClientConfig{URL: "http://127.0.0.1:1883"}},
		{"unparsable URL", mqtt.ClientConfig{URL: "tcp://[::1"}},
		{"shared group with a separator", mqtt.ClientConfig{URL: "tcp://127.0.0.1:1883", Shared: "a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			err := mqtt.NewIngester(tt.cfg, &recorder{}, testLogger(t)).Run(ctx)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("Run = %v, want an immediate error", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestIngesterRunTwice(t *testing.T) {
	checkLeaks(t)
	ing := mqtt.NewIngester(mqtt.ClientConfig{URL: "tcp://" + freeAddr(t)}, &recorder{}, testLogger(t))
	stop := runIngester(t, ing)
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := ing.Run(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("a second Run = %v, want an immediate error", err)
	}
	stop()
}

func TestIngesterURLPasswordNotLogged(t *testing.T) {
	checkLeaks(t)
	logs := &logCounter{}
	ing := mqtt.NewIngester(mqtt.ClientConfig{URL: "tcp://user:s3cret@" + freeAddr(t), MaxReconnectInterval: 100 * time.Millisecond}, &recorder{}, slog.New(logs))
	stop := runIngester(t, ing)
	waitFor(t, "a failed attempt", func() bool { return logs.count("mqtt connect failed") >= 1 })
	stop()
	if logs.contains("s3cret") {
		t.Error("the password in the URL was logged")
	}
}

func TestSendNotConnected(t *testing.T) {
	checkLeaks(t)
	ing := mqtt.NewIngester(mqtt.ClientConfig{URL: "tcp://" + freeAddr(t)}, &recorder{}, testLogger(t))
	err := ing.Send(context.Background(), "U1", telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1"})
	if !errors.Is(err, mqtt.ErrNotConnected) {
		t.Errorf("Send before Run = %v, want ErrNotConnected", err)
	}
}

// TestIngesterBoundsInFlight checks that a slow handler never runs more
// than MaxInFlight at once and that the rest still arrive.
func TestIngesterBoundsInFlight(t *testing.T) {
	checkLeaks(t)
	const limit, n = 4, 40
	b := startBroker(t, mqtt.BrokerConfig{})
	h := &slowHandler{delay: 20 * time.Millisecond}
	start(t, mqtt.ClientConfig{URL: brokerURL(b), ClientID: "li-bound", MaxInFlight: limit}, h)
	pub := connect(t, brokerURL(b), "lp-bound")
	for i := range n {
		pub.Publish(telemetry.Topic("U1", telemetry.KindGPS), 1, false, fmt.Sprintf(`{"seq":%d}`, i))
	}
	waitFor(t, fmt.Sprintf("%d handled", n), func() bool { return h.done.Load() >= n })
	if got := h.peak.Load(); got > limit || got < 2 {
		t.Errorf("peak concurrent handlers %d, want 2..%d", got, limit)
	}
}

type slowHandler struct {
	delay               time.Duration
	running, peak, done atomic.Int64
}

func (h *slowHandler) Handle(context.Context, string, []byte) error {
	n := h.running.Add(1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(h.delay)
	h.running.Add(-1)
	h.done.Add(1)
	return nil
}

// BenchmarkIngest measures QoS 1 messages from one publisher through the
// embedded broker to the Handler. At most ingestWindow messages are between
// the publisher and the Handler at once: unthrottled, one publisher outruns
// the acknowledgements and the broker drops what exceeds MaxInflight for the
// ingester (mochi has no flow control towards MQTT 3.1.1 clients).
func BenchmarkIngest(b *testing.B) {
	const ingestWindow = 256
	checkLeaks(b)
	br := startBroker(b, mqtt.BrokerConfig{MessageRate: rate.Inf})
	h := &countHandler{window: make(chan struct{}, ingestWindow), target: int64(b.N), reached: make(chan struct{})}
	ing := mqtt.NewIngester(mqtt.ClientConfig{URL: brokerURL(br), ClientID: "lb-ingest"}, h,
		slog.New(slog.DiscardHandler))
	runIngester(b, ing)
	waitConnected(b, ing)
	pub := connect(b, brokerURL(br), "lb-pub")
	topic := telemetry.Topic("U1", telemetry.KindGPS)
	payload := []byte(`{"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11,"crs":"wgs84"}`)

	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.window <- struct{}{}
		pub.Publish(topic, 1, false, payload)
	}
	select {
	case <-h.reached:
	case <-time.After(time.Minute):
		b.Fatalf("handled %d of %d", h.n.Load(), b.N)
	}
	b.StopTimer()
}

// countHandler counts messages and frees a slot of the window for each.
type countHandler struct {
	window  chan struct{}
	n       atomic.Int64
	target  int64
	reached chan struct{}
}

func (h *countHandler) Handle(context.Context, string, []byte) error {
	<-h.window
	if h.n.Add(1) == h.target {
		close(h.reached)
	}
	return nil
}

// logCounter is a slog.Handler that remembers what was logged.
type logCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &withAttrs{l, attrs}
}

func (l *logCounter) WithGroup(string) slog.Handler { return l }

func (l *logCounter) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if line == msg || strings.HasPrefix(line, msg+" ") {
			n++
		}
	}
	return n
}

func (l *logCounter) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// withAttrs keeps the attributes of logger.With in what logCounter records.
type withAttrs struct {
	*logCounter
	attrs []slog.Attr
}

func (w *withAttrs) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(w.attrs...)
	return w.logCounter.Handle(ctx, r)
}

func (w *withAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &withAttrs{w.logCounter, append(slices.Clip(w.attrs), attrs...)}
}
