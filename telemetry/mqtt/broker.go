package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Defaults of BrokerConfig.
const (
	DefaultListen           = ":1883"
	DefaultMaxPacketSize    = 256 << 10
	DefaultSessionExpiry    = 24 * time.Hour
	DefaultMessageExpiry    = 24 * time.Hour
	DefaultMaxPendingWrites = 1024
	DefaultMaxInflight      = 1024
	DefaultReceiveMaximum   = 1024
	DefaultMaxClients       = 10000
)

// connectWait is how long a new connection may take to complete its TLS
// handshake and send CONNECT.
const connectWait = 10 * time.Second

// BrokerConfig configures the embedded broker. Zero fields take the defaults.
//
// Secure mode, the one lifelined runs: Auth set (deny by default: who may
// connect, publish and subscribe), Ingest set (a PUBACK means the report is
// stored), TLS set wherever terminals connect over a network anyone else
// shares. With Auth nil every client may connect and use every topic: for
// tests and a trusted development machine only. The limits (packet size,
// message rate, pending writes, inflight, clients) apply in both modes.
type BrokerConfig struct {
	// Listen is the TCP address (default ":1883").
	Listen string
	// TLS, if set, makes the listener speak MQTT over TLS only (terminals
	// connect with ssl://); nil is plain TCP. It needs a certificate.
	TLS *tls.Config
	// Auth, if set, is who may connect, publish and subscribe; see Auth.
	Auth *Auth
	// Ingest, if set, receives every uplink message (a topic matched by
	// telemetry.UplinkFilter, cmd topics excepted) from inside the broker,
	// after authentication and ACLs and before the broker acknowledges it:
	// on nil the message is acknowledged and fanned out to subscribers as
	// usual; while Handle fails it is retried, and if it still fails after
	// IngestTimeout the message is neither acknowledged nor fanned out, and
	// the publisher is disconnected so that it retransmits the message on
	// reconnecting. Wills are handed over too, once. With Ingest set, lifelined needs no MQTT client of its own on the
	// embedded broker (and must not run one as well: it would handle
	// everything twice); it sends commands with Broker.Send.
	Ingest Handler
	// IngestTimeout bounds the handling of one message: a failed Ingest call
	// is retried with backoff within it, and a message still not handled
	// when it runs out is refused as above (default 10s). The publisher
	// waits for its PUBACK meanwhile.
	IngestTimeout time.Duration
	// MaxPacketSize is the largest packet accepted, in bytes (default 256 KiB:
	// a store-and-forward gps batch can be large). A client that sends a
	// larger one is disconnected and the packet is dropped.
	MaxPacketSize uint32
	// MessageRate and MessageBurst limit what one client id may publish:
	// MessageRate messages a second on average, MessageBurst at once
	// (default 20/s, burst 100, enough for a store-and-forward burst after
	// a coverage gap). A message over the limit is held, unacknowledged,
	// until the rate allows it (the broker stops reading from that client
	// meanwhile, so nothing is dropped); a client over the limit for longer
	// than FloodTimeout (default 30s) is disconnected. rate.Inf turns the
	// limit off. The server's own client (Auth.ServerUser) is exempt.
	MessageRate  rate.Limit
	MessageBurst int
	FloodTimeout time.Duration
	// SessionExpiry is the maximum session expiry the broker grants, and how
	// long it keeps the session of a disconnected MQTT 3.1.1 client that
	// connected without clean session (default 24h).
	SessionExpiry time.Duration
	// MessageExpiry is how long a queued or retained message is kept at most
	// (default 24h).
	MessageExpiry time.Duration
	// MaxPendingWrites is the per-client outbound queue; a message that finds
	// it full is dropped for that client, which is treated as slow
	// (default 1024).
	MaxPendingWrites int32
	// MaxInflight is how many QoS 1/2 messages may wait unacknowledged for
	// one client, connected or not; beyond it further messages are dropped
	// for that client (default 1024).
	MaxInflight uint16
	// ReceiveMaximum is the number of unacknowledged QoS 1/2 messages a
	// client may send, as announced to MQTT 5 clients (default 1024).
	ReceiveMaximum uint16
	// MaxClients is the number of connections served at once (default
	// 10000); a CONNECT over it is refused with "server unavailable".
	MaxClients int64
	// MaxConns is the number of TCP connections held at once, those that
	// have not sent CONNECT yet included (default MaxClients plus a
	// tenth). One over it is closed at once, before anything is read or a
	// goroutine started, counted in lifeline_mqtt_denied_total{reason=
	// "conn_limit"} and logged at most once a minute: idle sockets cannot
	// take all the process's file descriptors (and with them the HTTP
	// API). Set it below the descriptor limit, with room for the rest.
	MaxConns int
	// Metrics receives the broker's metrics (default: unregistered ones).
	Metrics *Metrics
	// CommandsReady, if set, is called (and must not block) when a
	// terminal subscribes to its cmd topic or resumes a session holding
	// that subscription: it can take commands again.
	CommandsReady func(unit string)
	// Hooks are further mochi hooks, added after Lifeline's own access and
	// limit hooks and before the Ingest hook. When neither Auth nor one of
	// them provides OnConnectAuthenticate or OnACLCheck, every client may
	// connect and use every topic. With Auth set none may provide them:
	// mochi admits whatever any hook admits, so one would widen Auth.
	Hooks []mochi.Hook
}

func (c BrokerConfig) withDefaults() BrokerConfig {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.IngestTimeout <= 0 {
		c.IngestTimeout = DefaultIngestTimeout
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.MessageRate <= 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	if c.FloodTimeout <= 0 {
		c.FloodTimeout = DefaultFloodTimeout
	}
	if c.SessionExpiry <= 0 {
		c.SessionExpiry = DefaultSessionExpiry
	}
	if c.MessageExpiry <= 0 {
		c.MessageExpiry = DefaultMessageExpiry
	}
	if c.MaxPendingWrites <= 0 {
		c.MaxPendingWrites = DefaultMaxPendingWrites
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = DefaultReceiveMaximum
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxConns <= 0 {
		c.MaxConns = int(c.MaxClients + c.MaxClients/10)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return c
}

// validate reports a configuration NewBroker cannot work with.
func (c BrokerConfig) validate() error {
	if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil {
		return errors.New("mqtt broker: TLS without a certificate")
	}
	if c.Auth == nil {
		return nil
	}
	for _, h := range c.Hooks {
		if h.Provides(mochi.OnConnectAuthenticate) || h.Provides(mochi.OnACLCheck) {
			return fmt.Errorf("mqtt broker: hook %s decides access, which Auth does", h.ID())
		}
	}
	return c.Auth.validate()
}

// capabilities sets every limit the broker enforces from c.
func (c BrokerConfig) capabilities() *mochi.Capabilities {
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = c.MaxPacketSize
	caps.MaximumSessionExpiryInterval = uint32(min(c.SessionExpiry/time.Second, 1<<32-1))
	caps.MaximumMessageExpiryInterval = int64(c.MessageExpiry / time.Second)
	caps.MaximumClientWritesPending = c.MaxPendingWrites
	caps.MaximumInflight = c.MaxInflight
	caps.ReceiveMaximum = c.ReceiveMaximum
	caps.MaximumClients = c.MaxClients
	caps.MaximumQos = 2
	caps.RetainAvailable = 1      // the online topic is retained
	caps.SharedSubAvailable = 1   // lifelined instances may split the stream
	caps.WildcardSubAvailable = 1 // the ingester subscribes to ems/v1/units/+/+
	caps.MinimumProtocolVersion = 3
	return caps
}

// Broker is the embedded MQTT broker, on mochi-mqtt/server/v2.
type Broker struct {
	srv    *mochi.Server
	ln     *listener
	log    *slog.Logger
	done   chan struct{} // closed by Close
	cancel func()        // ends the hooks' work in progress
	up     atomic.Bool   // serving

	mu      sync.Mutex
	serving bool
	closed  bool
	once    sync.Once
}

// NewBroker listens on cfg.Listen at once, so that a port conflict is
// reported at start, as one line that says what to do. It does not serve
// until Run.
func NewBroker(cfg BrokerConfig, logger *slog.Logger) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	log := logger.With("component", "mqtt-broker")

	nl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, listenError(cfg.Listen, err)
	}
	protocol := "tcp"
	if cfg.TLS != nil {
		nl, protocol = tls.NewListener(nl, cfg.TLS.Clone()), "tls"
	}
	srv := mochi.New(&mochi.Options{
		Capabilities: cfg.capabilities(),
		Logger:       slog.New(newLibLog(log.Handler())), // no payloads, no floods
		InlineClient: true,                               // Send publishes through it
	})
	// Hooks' work (an Authenticator or Ingest call, a held message) stops
	// when the broker closes.
	ctx, cancel := context.WithCancel(context.Background())
	for _, h := range cfg.hooks(ctx, srv, log) {
		if err := srv.AddHook(h, nil); err != nil {
			cancel()
			nl.Close()
			return nil, fmt.Errorf("mqtt broker: hook %s: %w", h.ID(), err)
		}
	}
	ln := &listener{id: "tcp", protocol: protocol, ln: nl, log: log, conns: map[net.Conn]struct{}{},
		max: cfg.MaxConns, metrics: cfg.Metrics, overLog: quota{window: time.Minute, perKey: 1, total: 1}}
	if err := srv.AddListener(ln); err != nil {
		cancel()
		nl.Close()
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	return &Broker{srv: srv, ln: ln, log: log, done: make(chan struct{}), cancel: cancel}, nil
}

// hooks returns the broker's hooks in the order mochi must run them:
// access first (mochi checks ACLs before any OnPublish anyway), then the
// limits, the caller's hooks, and the Ingest hook last, so that it sees
// only what every other hook let through.
func (c BrokerConfig) hooks(ctx context.Context, srv *mochi.Server, log *slog.Logger) []mochi.Hook {
	var deny func(client, reason, topic string)
	if c.Auth != nil {
		deny = c.Auth.OnDenied
	}
	report := newReporter(log, c.Metrics, deny)
	g := &guard{srv: srv, ctx: ctx, limit: c.MessageRate, burst: c.MessageBurst, flood: c.FloodTimeout,
		exempt: func(*mochi.Client) bool { return false }, metrics: c.Metrics, deny: report,
		pen: newPenalties(), meters: map[string]*meter{}, sweepAt: minSweep}

	var hooks []mochi.Hook
	switch {
	case c.Auth != nil:
		a := newAccess(ctx, c.Auth, report)
		a.deniedPublish = g.deniedPublish
		g.exempt = func(cl *mochi.Client) bool { return a.isServer(cl.Properties.Username) }
		hooks = append(hooks, a)
	case !slices.ContainsFunc(c.Hooks, func(h mochi.Hook) bool {
		return h.Provides(mochi.OnConnectAuthenticate) || h.Provides(mochi.OnACLCheck)
	}):
		hooks = append(hooks, new(allowAll))
	}
	hooks = append(hooks, g)
	hooks = append(hooks, c.Hooks...)
	if c.CommandsReady != nil {
		hooks = append(hooks, &readyHook{ready: c.CommandsReady})
	}
	if c.Ingest != nil {
		hooks = append(hooks, newDurable(ctx, srv, c.Ingest, c.IngestTimeout, log, c.Metrics))
	}
	return hooks
}

// allowAll lets every client connect and use every topic. (mochi's own
// auth.AllowHook would pull in yaml through its ledger.)
type allowAll struct{ mochi.HookBase }

var _ mochi.Hook = (*allowAll)(nil)

// ID implements mochi.Hook.
func (*allowAll) ID() string { return "allow-all" }

// Provides implements mochi.Hook.
func (*allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

// OnConnectAuthenticate implements mochi.Hook.
func (*allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

// OnACLCheck implements mochi.Hook.
func (*allowAll) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// listenError explains a port conflict in one line, with both ways out.
func listenError(addr string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("mqtt broker: %w", err)
	}
	host, port, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		return fmt.Errorf("mqtt broker: listen %s: %w", addr, syscall.EADDRINUSE)
	}
	next := addr
	if p, err := strconv.Atoi(port); err == nil && p > 0 && p < 65535 {
		next = net.JoinHostPort(host, strconv.Itoa(p+1))
	}
	holder := host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		holder = "127.0.0.1"
	}
	return fmt.Errorf("mqtt broker: listen %s: %w — another MQTT broker (Mosquitto?) holds the port; pass --mqtt-listen %s or use it with --mqtt-url tcp://%s",
		addr, syscall.EADDRINUSE, next, net.JoinHostPort(holder, port))
}

// Addr returns the address the broker listens on, with the real port when
// Listen asked for port 0.
func (b *Broker) Addr() net.Addr { return b.ln.ln.Addr() }

// Run serves clients until ctx is done or Close is called, then disconnects
// every client and closes the listener. It returns nil after a clean stop.
func (b *Broker) Run(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return errors.New("mqtt broker: closed")
	case b.serving:
		b.mu.Unlock()
		return errors.New("mqtt broker: already running")
	}
	b.serving = true
	b.up.Store(true) // before Serve starts the listener and a client can connect
	err := b.srv.Serve()
	if err != nil {
		b.up.Store(false)
	}
	b.mu.Unlock()
	if err != nil {
		b.Close()
		return fmt.Errorf("mqtt broker: %w", err)
	}
	b.log.Info("mqtt broker listening", "addr", b.Addr().String(), "protocol", b.ln.protocol)

	select {
	case <-ctx.Done():
	case <-b.done:
	}
	return b.Close()
}

// Close disconnects every client, closes the listener and waits for the
// connections to finish. Persistent sessions live in memory and end with it.
// It is safe to call more than once and without Run.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.mu.Lock() // not while Serve runs
		b.closed = true
		b.up.Store(false)
		b.mu.Unlock()
		close(b.done)
		b.cancel()        // before the clients' read loops are waited for
		_ = b.srv.Close() // always nil
	})
	return nil
}

// Connected reports whether the broker is serving, for /readyz: the same
// check as Ingester.Connected.
func (b *Broker) Connected() bool { return b.up.Load() }

// Send publishes cmd on the unit's cmd topic at QoS 1 (not retained)
// through the broker's inline client, with no MQTT connection of its own.
// It fails with ErrNotConnected while the broker is not serving. A nil
// error means the command is queued for every session subscribed to the
// topic, a disconnected persistent one included (up to MaxInflight
// messages and MessageExpiry); it does not mean the terminal has it, and
// with no session subscribed it goes nowhere, as on any broker: dispatch
// learns of delivery from the terminal's ack. Terminals must treat commands
// idempotently: one may arrive twice after a reconnect.
func (b *Broker) Send(ctx context.Context, unit string, cmd telemetry.Command) error {
	if !telemetry.ValidUnitID(unit) {
		return fmt.Errorf("send to unit %q: invalid unit id", unit)
	}
	payload, err := telemetry.EncodeCommand(cmd)
	if err != nil {
		return fmt.Errorf("send to unit %s: %w", unit, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send to unit %s: %w", unit, err)
	}
	if !b.Connected() {
		return fmt.Errorf("send to unit %s: %w", unit, ErrNotConnected)
	}
	if err := b.srv.Publish(telemetry.Topic(unit, telemetry.KindCmd), payload, false, qos1); err != nil {
		return fmt.Errorf("send to unit %s: %w", unit, err)
	}
	return nil
}

// listener is a mochi listener on a net.Listener that NewBroker opened,
// which is how a port conflict surfaces before Run and how Addr knows the
// port. Unlike mochi's own, it bounds the connections it holds
// (MaxConns) and the wait for CONNECT, closes connections that never
// became clients, and waits for every goroutine it started on Close.
type listener struct {
	id       string
	protocol string // tcp or tls
	ln       net.Listener
	log      *slog.Logger
	max      int
	metrics  *Metrics
	over     atomic.Int64 // connections refused at the cap since the last log line
	overLog  quota

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup // Serve and one per connection
}

var _ listeners.Listener = (*listener)(nil)

// Init implements listeners.Listener; the socket is already open.
func (l *listener) Init(*slog.Logger) error { return nil }

// ID implements listeners.Listener.
func (l *listener) ID() string { return l.id }

// Address implements listeners.Listener.
func (l *listener) Address() string { return l.ln.Addr().String() }

// Protocol implements listeners.Listener.
func (l *listener) Protocol() string { return l.protocol }

// Serve accepts connections until Close.
func (l *listener) Serve(establish listeners.EstablishFn) {
	if _, closed := l.track(nil); closed {
		return
	}
	defer l.wg.Done()
	var pause time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, like net/http.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			l.log.Error("mqtt accept failed", "error", err, "retry_in", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		full, closed := l.track(conn)
		if closed {
			conn.Close()
			return
		}
		if full {
			l.refuse(conn)
			continue
		}
		go l.serveConn(establish, conn)
	}
}

func (l *listener) serveConn(establish listeners.EstablishFn, conn net.Conn) {
	defer l.untrack(conn)
	// The TLS handshake, if any, and CONNECT must come within connectWait;
	// mochi sets the keepalive deadline after CONNECT.
	_ = conn.SetDeadline(time.Now().Add(connectWait))
	// mochi logs every disconnect at debug level; the limits hook reports
	// a client disconnected for an oversized packet.
	_ = establish(l.id, conn)
}

// track registers a goroutine (and conn, if any) unless the listener is
// closed or conn would be one over the cap.
func (l *listener) track(conn net.Conn) (full, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, true
	}
	if conn != nil {
		if l.max > 0 && len(l.conns) >= l.max {
			return true, false
		}
		l.conns[conn] = struct{}{}
	}
	l.wg.Add(1)
	return false, false
}

// refuse closes a connection over the cap at once (a reset, not a
// graceful close: the client learns at once), counts it, and logs the
// refusals at most once a minute.
func (l *listener) refuse(conn net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn() // not a word of TLS
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
	l.metrics.denied.WithLabelValues(DeniedConnLimit).Inc()
	n := l.over.Add(1)
	if l.overLog.allow("", time.Now()) {
		l.over.Add(-n)
		l.log.Warn("mqtt connection refused: at the connection cap", "max_conns", l.max, "refused", n)
	}
}

func (l *listener) untrack(conn net.Conn) {
	l.mu.Lock()
	delete(l.conns, conn)
	l.mu.Unlock()
	conn.Close()
	l.wg.Done()
}

// Close stops accepting, disconnects the listener's clients and waits.
//
// It closes every connection itself rather than through mochi's
// closeClients: that calls Clients.GetByListener, which takes a read lock
// twice and deadlocks Close when a client disconnects at the same moment
// (mochi-mqtt/server#488, unfixed in v2.7.9). Closing the socket ends the
// client's read loop as mochi's own disconnect would; an MQTT 5 client
// misses only the DISCONNECT reason "server shutting down".
func (l *listener) Close(listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	_ = l.ln.Close()
	conns := slices.Collect(maps.Keys(l.conns))
	l.mu.Unlock()
	for _, conn := range conns {
		if tc, ok := conn.(*tls.Conn); ok {
			conn = tc.NetConn() // no close_notify: it could wait on a slow client
		}
		conn.Close()
	}
	l.wg.Wait()
}
