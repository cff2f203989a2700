package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Handler takes one inbound message; telemetry.Pipeline satisfies it.
// A nil error means the message may be acknowledged. Handle is called from
// many goroutines at once and must be safe for concurrent use.
type Handler interface {
	Handle(ctx context.Context, topic string, payload []byte) error
}

// ErrNotConnected is returned by Send while the Ingester has no open
// connection to its broker.
var ErrNotConnected = errors.New("mqtt: not connected")

// Defaults of ClientConfig.
const (
	DefaultClientID             = "lifelined-ingest"
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
	DefaultMaxInFlight          = 256
)

const (
	keepAlive     = 30 * time.Second
	quiesceMillis = 250 // Disconnect waits this long for work in progress
	minRetry      = 500 * time.Millisecond
	stableSession = 30 * time.Second // a session up this long resets the backoff
	qos1          = 1
	subackRefused = 0x80
	protocolV311  = 4
	sharePrefix   = "$share/"
)

// ClientConfig configures an Ingester.
type ClientConfig struct {
	// URL is the broker, e.g. tcp://host:1883; ssl://, tls:// and ws:// work
	// as paho supports them. Credentials may also be given in the URL.
	URL string
	// ClientID is stable, so the persistent session survives reconnects
	// (default "lifelined-ingest"). Instances sharing a subscription (Shared)
	// need distinct ids, or the broker makes them take each other's session over.
	ClientID string
	// Username and Password authenticate to the broker when Username is set.
	Username, Password string
	// Shared, if set, subscribes via the MQTT shared subscription
	// "$share/{Shared}/" + Filter so several lifelined instances split the
	// stream (Mosquitto >= 1.6 and EMQX support $share with MQTT 3.1.1 clients).
	Shared string
	// Filter is the subscription (default telemetry.UplinkFilter).
	Filter string
	// ConnectTimeout bounds one connection attempt, dial and MQTT handshake
	// (default 10s). Shutdown may wait for an attempt in progress.
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the backoff between connection attempts
	// (default 30s).
	MaxReconnectInterval time.Duration
	// MaxInFlight is the number of messages handled at once (default 256).
	// Further messages wait, unacknowledged, for a free slot.
	MaxInFlight int
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Filter == "" {
		c.Filter = telemetry.UplinkFilter
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxReconnectInterval <= 0 {
		c.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

// subscription is the filter as sent to the broker.
func (c ClientConfig) subscription() string {
	if c.Shared == "" {
		return c.Filter
	}
	return sharePrefix + c.Shared + "/" + c.Filter
}

// Validate reports a configuration Run cannot work with.
func (c ClientConfig) Validate() error {
	if c.URL == "" {
		return errors.New("mqtt ingest: no broker URL")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("mqtt ingest: broker URL: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps", "ws", "wss", "unix":
	default:
		return fmt.Errorf("mqtt ingest: broker URL %s: unsupported scheme %q (want tcp, ssl or ws)", u.Redacted(), u.Scheme)
	}
	if strings.ContainsAny(c.Shared, "/+#") {
		return fmt.Errorf("mqtt ingest: shared group %q: must not contain '/', '+' or '#'", c.Shared)
	}
	return nil
}

// Ingester is the server's MQTT client: it receives the terminals' uplink
// into a Handler and publishes commands to them.
type Ingester struct {
	cfg ClientConfig
	h   Handler
	log *slog.Logger

	mu     sync.Mutex
	client paho.Client // set while Run runs
	ready  atomic.Bool // connected and subscribed
}

// NewIngester returns an Ingester that passes messages to h. It does not
// connect; Run does.
func NewIngester(cfg ClientConfig, h Handler, logger *slog.Logger) *Ingester {
	if logger == nil {
		logger = slog.Default()
	}
	return &Ingester{
		cfg: cfg.withDefaults(),
		h:   h,
		log: logger.With("component", "mqtt-ingest"),
	}
}

// Run connects and keeps the client connected until ctx is done, then
// returns nil. An invalid configuration, or a Run already in progress, is
// the only error.
//
// The session is persistent (clean session off) and the subscription, at
// QoS 1, is made again after every connect, so a broker that lost the session
// still delivers. A broker that is down, refuses the connection or drops it
// is retried with capped, jittered exponential backoff; each failure is
// logged. Messages are handled concurrently, at most MaxInFlight at once, and
// each is acknowledged only after Handle returns nil; after an error it stays
// unacknowledged and the broker redelivers it on the next session. On
// shutdown Run stops taking messages, waits for the handlers in flight (their
// ctx is Run's, now done) and disconnects.
func (i *Ingester) Run(ctx context.Context) error {
	if err := i.cfg.Validate(); err != nil {
		return err
	}
	u, _ := url.Parse(i.cfg.URL)
	log := i.log.With("broker", u.Redacted(), "client_id", i.cfg.ClientID)

	work := &inflight{sem: make(chan struct{}, i.cfg.MaxInFlight)}
	lost := make(chan error, 1)
	client := paho.NewClient(i.options(
		func(_ paho.Client, m paho.Message) { i.deliver(ctx, work, m) },
		func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		},
	))
	if !i.setClient(client) {
		return errors.New("mqtt ingest: already running")
	}
	defer i.clearClient()

	bo := backoff{min: minRetry, max: i.cfg.MaxReconnectInterval}
	for ctx.Err() == nil {
		select { // a loss reported by an earlier session is stale
		case <-lost:
		default:
		}
		start := time.Now()
		up, err := i.session(ctx, log, client, lost)
		if ctx.Err() != nil {
			break
		}
		if up && time.Since(start) >= stableSession {
			bo.reset()
		}
		wait := bo.next()
		if up {
			log.Warn("mqtt connection lost", "error", err, "retry_in", wait)
		} else {
			log.Warn("mqtt connect failed", "error", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}

	work.stop()
	client.Disconnect(quiesceMillis)
	log.Info("mqtt disconnected")
	return nil
}

// options builds the paho client options. Run reconnects itself rather than
// through paho's AutoReconnect/ConnectRetry: paho's waits between attempts
// cannot be interrupted, so its goroutines would outlive Run, and it reports
// failed attempts only through callbacks.
func (i *Ingester) options(deliver paho.MessageHandler, lost paho.ConnectionLostHandler) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(i.cfg.URL).
		SetClientID(i.cfg.ClientID).
		SetUsername(i.cfg.Username).
		SetPassword(i.cfg.Password).
		SetProtocolVersion(protocolV311).
		SetCleanSession(false).
		SetResumeSubs(false). // Run subscribes after every connect
		SetKeepAlive(keepAlive).
		SetConnectTimeout(i.cfg.ConnectTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetAutoAckDisabled(true).
		// Every message goes to the default handler: a resumed session
		// redelivers before any Subscribe call could register a route.
		SetDefaultPublishHandler(deliver).
		SetConnectionLostHandler(lost)
}

// session makes one connection and keeps it until it is lost or ctx is done.
// up reports whether the connection was established.
func (i *Ingester) session(ctx context.Context, log *slog.Logger, c paho.Client, lost <-chan error) (up bool, err error) {
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		<-tok.Done() // bounded by ConnectTimeout; Run disconnects next
		return false, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return false, err
	}
	log.Info("mqtt connected", "session_present", tok.(*paho.ConnectToken).SessionPresent())

	bo := backoff{min: minRetry, max: i.cfg.MaxReconnectInterval}
	for {
		err := i.subscribe(ctx, c)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return true, nil
		}
		wait := bo.next()
		log.Error("mqtt subscribe failed", "filter", i.cfg.subscription(), "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return true, nil
		case err := <-lost:
			t.Stop()
			return true, err
		case <-t.C:
		}
	}
	log.Info("mqtt subscribed", "filter", i.cfg.subscription())

	i.ready.Store(true)
	defer i.ready.Store(false)
	select {
	case <-ctx.Done():
		return true, nil
	case err := <-lost:
		return true, err
	}
}

func (i *Ingester) subscribe(ctx context.Context, c paho.Client) error {
	tok := c.Subscribe(i.cfg.subscription(), qos1, nil)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return err
	}
	// paho keys the result by the filter without its $share prefix.
	for _, code := range tok.(*paho.SubscribeToken).Result() {
		if code == subackRefused {
			return errors.New("refused by the broker")
		}
	}
	return nil
}

// deliver runs in the goroutine paho starts for each message (order does
// not matter). It waits for a slot, calls the Handler and acknowledges only
// on success.
func (i *Ingester) deliver(ctx context.Context, work *inflight, m paho.Message) {
	if !work.enter() {
		return // shutting down: not acknowledged, redelivered next session
	}
	defer work.exit()
	select {
	case work.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-work.sem }()

	if err := safeHandle(ctx, i.h, m.Topic(), m.Payload()); err != nil {
		if ctx.Err() != nil {
			i.log.Debug("mqtt message not acknowledged at shutdown", "topic", m.Topic(), "error", err)
			return
		}
		i.log.Warn("mqtt message not acknowledged; the broker redelivers it on the next session",
			"topic", m.Topic(), "duplicate", m.Duplicate(), "error", err)
		return
	}
	m.Ack()
}

// Send publishes cmd on the unit's cmd topic at QoS 1 (not retained) and
// waits for the broker's PUBACK or ctx. It fails at once with
// ErrNotConnected while there is no connection. A command whose PUBACK was
// not seen may still be delivered: paho keeps it in the session and resends
// it after a reconnect, so terminals must treat commands idempotently.
func (i *Ingester) Send(ctx context.Context, unit string, cmd telemetry.Command) error {
	if unit == "" || strings.ContainsAny(unit, "/+#") {
		return fmt.Errorf("send to unit %q: invalid unit id", unit)
	}
	payload, err := telemetry.EncodeCommand(cmd)
	if err != nil {
		return fmt.Errorf("send to unit %s: %w", unit, err)
	}
	c := i.currentClient()
	if c == nil || !c.IsConnectionOpen() {
		return fmt.Errorf("send to unit %s: %w", unit, ErrNotConnected)
	}
	tok := c.Publish(telemetry.Topic(unit, telemetry.KindCmd), qos1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("send to unit %s: %w", unit, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send to unit %s: %w", unit, ctx.Err())
	}
}

// Connected reports whether the Ingester is connected and subscribed, for
// /readyz.
func (i *Ingester) Connected() bool {
	c := i.currentClient()
	return c != nil && i.ready.Load() && c.IsConnectionOpen()
}

// setClient records the client of the Run in progress, unless there is one.
func (i *Ingester) setClient(c paho.Client) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.client != nil {
		return false
	}
	i.client = c
	return true
}

func (i *Ingester) clearClient() {
	i.mu.Lock()
	i.client = nil
	i.mu.Unlock()
}

func (i *Ingester) currentClient() paho.Client {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.client
}

// inflight bounds and tracks the handlers running.
type inflight struct {
	sem     chan struct{}
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// enter registers a delivery unless stop has been called.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.wg.Add(1)
	return true
}

func (f *inflight) exit() { f.wg.Done() }

// stop refuses new deliveries and waits for those in progress.
func (f *inflight) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.wg.Wait()
}

// backoff yields exponentially growing waits between min and max, with
// jitter so that many servers do not reconnect in step.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = min(b.min, b.max)
	case b.cur < b.max:
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }
