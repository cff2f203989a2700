package mqtt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
)

// mosquittoEnv overrides where the external-broker tests find Mosquitto.
const mosquittoEnv = "LIFELINE_TEST_MQTT_URL"

const waitLong = 15 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkLeaks fails t if goroutines started during t outlive it. Call it
// first, so that it runs after every other cleanup.
func checkLeaks(tb testing.TB) {
	tb.Helper()
	ignore := goleak.IgnoreCurrent()
	tb.Cleanup(func() { goleak.VerifyNone(tb, ignore) })
}

func testLogger(tb testing.TB) *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = tb.Output()
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// uniq returns a short random tag, so that runs sharing one Mosquitto do
// not see each other's sessions and topics.
func uniq(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startBroker runs an embedded broker on a free loopback port until the
// test ends.
func startBroker(tb testing.TB, cfg mqtt.BrokerConfig) *mqtt.Broker {
	tb.Helper()
	b, _ := runBroker(tb, cfg)
	return b
}

// runBroker runs an embedded broker until stop is called or the test ends.
func runBroker(tb testing.TB, cfg mqtt.BrokerConfig) (b *mqtt.Broker, stop func()) {
	tb.Helper()
	return runBrokerLog(tb, cfg, testLogger(tb))
}

// runBrokerLog is runBroker with the broker's logger.
func runBrokerLog(tb testing.TB, cfg mqtt.BrokerConfig, log *slog.Logger) (b *mqtt.Broker, stop func()) {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := mqtt.NewBroker(cfg, log)
	if err != nil {
		tb.Fatalf("NewBroker: %v", err)
	}
	return b, runUntilStopped(tb, "Broker", b.Run)
}

// runIngester runs ing until stop is called or the test ends.
func runIngester(tb testing.TB, ing *mqtt.Ingester) (stop func()) {
	tb.Helper()
	return runUntilStopped(tb, "Ingester", ing.Run)
}

// runUntilStopped calls run in a goroutine; stop cancels it and checks
// that it returns nil, promptly.
func runUntilStopped(tb testing.TB, name string, run func(context.Context) error) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("%s.Run: %v", name, err)
				}
			case <-time.After(waitLong):
				tb.Errorf("%s.Run did not return %v after cancel", name, waitLong)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

func brokerURL(b *mqtt.Broker) string { return "tcp://" + b.Addr().String() }

// mosquittoURL is the external broker CI provides. It is not optional:
// when it cannot be reached the test fails and says so.
func mosquittoURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(mosquittoEnv)
	if u == "" {
		u = "tcp://127.0.0.1:1883"
	}
	opts := paho.NewClientOptions().AddBroker(u).SetClientID("lt-probe-" + uniq(tb)).
		SetConnectTimeout(3 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("Mosquitto is not reachable at %s (%v): these tests need a real broker; start mosquitto on 127.0.0.1:1883 or set %s", u, tok.Error(), mosquittoEnv)
	}
	c.Disconnect(100)
	return u
}

func waitConnected(tb testing.TB, ing *mqtt.Ingester) {
	tb.Helper()
	waitFor(tb, "ingester connected and subscribed", ing.Connected)
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", waitLong, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// message is what a recorder saw.
type message struct {
	Topic, Payload string
}

// recorder is a Handler that records messages; fail, if set, decides
// which of them to refuse.
type recorder struct {
	fail func(topic string, payload []byte) error

	mu    sync.Mutex
	got   []message // handled with a nil error
	calls int
}

func (r *recorder) Handle(_ context.Context, topic string, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(topic, payload); err != nil {
			return err
		}
	}
	r.got = append(r.got, message{topic, string(payload)})
	return nil
}

func (r *recorder) messages() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// waitMessages waits until r has handled n messages and returns them.
func (r *recorder) waitMessages(tb testing.TB, n int) []message {
	tb.Helper()
	waitFor(tb, fmt.Sprintf("%d handled messages", n), func() bool { return len(r.messages()) >= n })
	return r.messages()
}

var errRefuse = errors.New("refused by the test handler")

// connect returns a connected paho client with a clean session that is
// disconnected when the test ends.
func connect(tb testing.TB, url, id string, configure ...func(*paho.ClientOptions)) paho.Client {
	tb.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetOrderMatters(false)
	for _, f := range configure {
		f(opts)
	}
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		tb.Fatalf("connect %s to %s: %v", id, url, tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(250) })
	return c
}

func publish(tb testing.TB, c paho.Client, topic string, payload []byte) {
	tb.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		tb.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// forgetSession ends the persistent session of id on the broker at url, so
// that runs against a shared Mosquitto leave nothing behind.
func forgetSession(tb testing.TB, url, id string) {
	tb.Helper()
	tb.Cleanup(func() {
		opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
			SetConnectTimeout(2 * time.Second).SetAutoReconnect(false)
		c := paho.NewClient(opts)
		if tok := c.Connect(); tok.WaitTimeout(3*time.Second) && tok.Error() == nil {
			c.Disconnect(100)
		}
	})
}

// freeAddr returns a loopback address nobody listens on (for now).
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// dial connects a paho client like connect, but returns the refusal
// instead of failing the test.
func dial(tb testing.TB, url, id string, configure ...func(*paho.ClientOptions)) (paho.Client, error) {
	tb.Helper()
	// MQTT 3.1.1 only: on a refusal paho would retry with 3.1.
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetOrderMatters(false)
	for _, f := range configure {
		f(opts)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLong) {
		tb.Fatalf("connect %s to %s did not complete", id, url)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	tb.Cleanup(func() { c.Disconnect(250) })
	return c, nil
}

// login sets a client's credentials.
func login(user, password string) func(*paho.ClientOptions) {
	return func(o *paho.ClientOptions) { o.SetUsername(user).SetPassword(password) }
}

// onLost reports a lost connection on the returned channel.
func onLost(o *paho.ClientOptions) <-chan error {
	lost := make(chan error, 1)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	return lost
}

// publishErr publishes at QoS 1 and returns the outcome; a token that is
// not complete after wait is reported as errNoPuback.
func publishErr(c paho.Client, topic string, payload []byte, wait time.Duration) error {
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(wait) {
		return errNoPuback
	}
	return tok.Error()
}

var errNoPuback = errors.New("no PUBACK")
