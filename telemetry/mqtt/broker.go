package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
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

// connectWait is how long a new connection may take to send CONNECT.
const connectWait = 10 * time.Second

// BrokerConfig configures the embedded broker. Zero fields take the defaults.
type BrokerConfig struct {
	// Listen is the TCP address (default ":1883").
	Listen string
	// MaxPacketSize is the largest packet accepted, in bytes (default 256 KiB:
	// a store-and-forward gps batch can be large). A client that sends a
	// larger one is disconnected and the packet is dropped.
	MaxPacketSize uint32
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
	// MaxClients is the number of connections served at once (default 10000).
	MaxClients int64
	// Hooks are added to the broker in order: authentication, ACLs, metrics.
	// When none provides OnConnectAuthenticate or OnACLCheck, every client
	// may connect and use every topic (contract v1 before security lands).
	Hooks []mochi.Hook
}

func (c BrokerConfig) withDefaults() BrokerConfig {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
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
	return c
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
	srv  *mochi.Server
	ln   *listener
	log  *slog.Logger
	done chan struct{} // closed by Close

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
	if logger == nil {
		logger = slog.Default()
	}
	log := logger.With("component", "mqtt-broker")

	nl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, listenError(cfg.Listen, err)
	}
	srv := mochi.New(&mochi.Options{
		Capabilities: cfg.capabilities(),
		Logger:       log,
	})
	if err := addHooks(srv, cfg.Hooks); err != nil {
		nl.Close()
		return nil, err
	}
	ln := &listener{id: "tcp", ln: nl, log: log, conns: map[net.Conn]struct{}{}}
	if err := srv.AddListener(ln); err != nil {
		nl.Close()
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	return &Broker{srv: srv, ln: ln, log: log, done: make(chan struct{})}, nil
}

func addHooks(srv *mochi.Server, hooks []mochi.Hook) error {
	guarded := false
	for _, h := range hooks {
		if h.Provides(mochi.OnConnectAuthenticate) || h.Provides(mochi.OnACLCheck) {
			guarded = true
		}
	}
	if !guarded {
		hooks = append([]mochi.Hook{new(allowAll)}, hooks...)
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			return fmt.Errorf("mqtt broker: hook %s: %w", h.ID(), err)
		}
	}
	return nil
}

// allowAll lets every client connect and use every topic. (mochi's own
// auth.AllowHook would pull in yaml through its ledger.)
type allowAll struct{ mochi.HookBase }

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
	err := b.srv.Serve()
	b.mu.Unlock()
	if err != nil {
		b.Close()
		return fmt.Errorf("mqtt broker: %w", err)
	}
	b.log.Info("mqtt broker listening", "addr", b.Addr().String())

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
		b.mu.Unlock()
		close(b.done)
		_ = b.srv.Close() // always nil
	})
	return nil
}

// listener is a mochi listener on a net.Listener that NewBroker opened,
// which is how a port conflict surfaces before Run and how Addr knows the
// port. Unlike mochi's own, it bounds the wait for CONNECT, closes
// connections that never became clients, and waits for every goroutine it
// started on Close.
type listener struct {
	id  string
	ln  net.Listener
	log *slog.Logger

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
func (l *listener) Protocol() string { return "tcp" }

// Serve accepts connections until Close.
func (l *listener) Serve(establish listeners.EstablishFn) {
	if !l.track(nil) {
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
		if !l.track(conn) {
			conn.Close()
			return
		}
		go l.serveConn(establish, conn)
	}
}

func (l *listener) serveConn(establish listeners.EstablishFn, conn net.Conn) {
	defer l.untrack(conn)
	_ = conn.SetDeadline(time.Now().Add(connectWait)) // mochi resets it after CONNECT
	// mochi logs every disconnect at debug level; a refused packet deserves more.
	if err := establish(l.id, conn); errors.Is(err, packets.ErrPacketTooLarge) {
		l.log.Warn("mqtt client disconnected: packet too large", "remote", conn.RemoteAddr().String())
	}
}

// track registers a goroutine (and conn, if any) unless the listener is closed.
func (l *listener) track(conn net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if conn != nil {
		l.conns[conn] = struct{}{}
	}
	l.wg.Add(1)
	return true
}

func (l *listener) untrack(conn net.Conn) {
	l.mu.Lock()
	delete(l.conns, conn)
	l.mu.Unlock()
	conn.Close()
	l.wg.Done()
}

// Close stops accepting, disconnects the listener's clients and waits.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()

	closeClients(l.id)
	_ = l.ln.Close()
	l.mu.Lock()
	for conn := range l.conns { // those that had not sent CONNECT yet
		conn.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
