package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/dispatch/sqlite"
	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
	"github.com/lifeline-ems/lifeline/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errHelp) {
			fmt.Fprintln(os.Stderr, "lifelined:", err)
		}
		os.Exit(1)
	}
}

var errHelp = errors.New("help requested")

// run is main without the process: parse, start, wait for ctx, close.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "audit":
			return runAudit(ctx, args[1:], stdout, stderr)
		case "admin":
			return runAdmin(ctx, args[1:], stdout, stderr)
		case "backup":
			return runBackup(ctx, args[1:], stdout, stderr)
		}
	}
	m := NewMain()
	if err := m.Config.Parse("lifelined", args, nil); err != nil {
		if strings.Contains(err.Error(), "help requested") {
			return errHelp
		}
		return err
	}
	m.Logger = newLogger(stderr, m.Config.LogLevel)
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	m.Logger.Info("lifeline is up", "console", "http://"+withHost(m.HTTPAddr(), "localhost")+"/", "mqtt", redacted(m.MQTTURL()))
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// Main is the whole server, wired from its Config. Run starts it and
// returns once it is listening; Close stops it. Tests run this same Main
// on free ports.
type Main struct {
	Config Config
	Logger *slog.Logger

	Area     *dispatch.Area
	Service  *dispatch.Service
	Access   *dispatch.Access
	Registry *prometheus.Registry

	record    record
	connected func() bool
	broker    *mqtt.Broker
	ingester  *mqtt.Ingester
	web       *web.Server
	pprof     *pprofServer // nil unless --pprof-listen
	mqttURL   string

	unlock   func() error // releases the data directory (embedded store)
	cancel   context.CancelFunc
	group    *errgroup.Group
	stopDemo func() error
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
}

// HTTPAddr is the address the HTTP server listens on (after Run).
func (m *Main) HTTPAddr() net.Addr { return m.web.Addr() }

// PprofAddr is the address of the profiling endpoint, nil when it is off
// (after Run).
func (m *Main) PprofAddr() net.Addr {
	if m.pprof == nil {
		return nil
	}
	return m.pprof.Addr()
}

// MQTTURL is the broker the server's own client uses (after Run).
func (m *Main) MQTTURL() string { return m.mqttURL }

// Run builds every part and starts them. It returns an error, without
// leaving anything running, when a part cannot start (a port in use, a bad
// area file, an unsupported option).
func (m *Main) Run(ctx context.Context) (err error) {
	c := m.Config
	if err := c.Validate(); err != nil {
		return err
	}
	if c.RedisURL != "" {
		return fmt.Errorf("--redis-url is not supported by this version yet: shared live state is being built")
	}
	log := m.Logger
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()
	if m.Area, err = loadArea(c.Area); err != nil {
		return err
	}
	areaJSON, err := geojson.Encode(m.Area)
	if err != nil {
		return fmt.Errorf("area: %w", err)
	}
	httpTLS, err := loadTLS("--tls-cert", c.TLSCert, c.TLSKey)
	if err != nil {
		return err
	}
	mqttTLS, err := loadTLS("--mqtt-tls-cert", c.MQTTTLSCert, c.MQTTTLSKey)
	if err != nil {
		return err
	}
	m.Registry = prometheus.NewRegistry()
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The durable record first: the picture, the users and the telemetry
	// gate are rebuilt from it. The embedded record has one writer: a
	// second server on the same data directory stops here, saying so.
	if c.PostgresURL == "" {
		unlock, err := sqlite.Lock(c.DataDir)
		if err != nil {
			return err
		}
		m.unlock = unlock
		closers = append(closers, func() error { m.unlock = nil; return unlock() })
	}
	if m.record, err = openRecord(ctx, c, log); err != nil {
		return err
	}
	closers = append(closers, m.record.Close)
	// Access tells the live feeds on the bus when sessions end.
	bus := dispatch.NewBus()
	if m.Access, err = dispatch.NewAccess(dispatch.AccessConfig{Users: m.record, Auditor: m.record, Area: m.Area, Events: bus, Registry: m.Registry, Logger: log}); err != nil {
		return err
	}

	// Messages go broker -> pipeline -> service, and commands service ->
	// broker: bind the pipeline late to close the loop. On the embedded
	// broker the pipeline runs before the terminal's PUBACK, so a PUBACK
	// means stored; an external broker is read by the paho ingester, which
	// acknowledges only what it stored.
	var pipeline *telemetry.Pipeline
	ingest := handlerFunc(func(ctx context.Context, topic string, payload []byte) error {
		return pipeline.Handle(ctx, topic, payload)
	})
	var commands dispatch.Commander
	// A terminal that subscribes to its commands gets what waits for it in
	// the outbox (the courier is bound below, before the broker serves).
	var courier *dispatch.Courier
	ready := func(unit string) { courier.Ready(unit) }
	if c.MQTTURL == "" {
		m.broker, err = mqtt.NewBroker(mqtt.BrokerConfig{
			Listen: c.MQTTListen, TLS: mqttTLS, Ingest: ingest, Metrics: mqtt.NewMetrics(m.Registry), MessageRate: unitRate(c.UnitRate),
			Auth: &mqtt.Auth{Units: m.Access, OnDenied: m.denied}, MaxConns: mqttConnCap(c.MQTTMaxConns, log), CommandsReady: ready,
		}, log)
		if err != nil {
			return err
		}
		closers = append(closers, m.broker.Close)
		scheme := "tcp://"
		if mqttTLS != nil {
			scheme = "ssl://"
		}
		m.mqttURL, commands, m.connected = scheme+withHost(m.broker.Addr(), "127.0.0.1"), m.broker, m.broker.Connected
	} else {
		m.ingester = mqtt.NewIngester(mqtt.ClientConfig{URL: c.MQTTURL, Shared: c.Shared, ClientID: ingestClientID(c.MQTTClientID)}, ingest, log)
		m.mqttURL, commands, m.connected = c.MQTTURL, m.ingester, m.ingester.Connected
	}

	if m.Service, err = dispatch.NewService(ctx, dispatch.Config{
		Area: m.Area, Store: m.record, Consents: m.record, Tracks: m.record, Auditor: m.record,
		Events: bus, Commands: commands, ConsentTimeout: c.ConsentTimeout, Logger: log,
		// On an external broker the server does not see terminals connect:
		// their online report says they are back.
		RedeliverOnOnline: c.MQTTURL != "",
		Infer:             dispatch.InferConfig{Policy: dispatch.InferPolicy(c.InferStatus)},
	}); err != nil {
		return err
	}
	courier = m.Service.Courier()
	var acks *dispatch.AckWatch
	if c.AckTimeout > 0 {
		if acks, err = dispatch.NewAckWatch(m.Service, c.AckTimeout, dispatch.AckPolicy(c.AckPolicy)); err != nil {
			return err
		}
	}
	if err = m.bootstrap(ctx); err != nil {
		return err
	}
	validator, err := m.validator(ctx)
	if err != nil {
		return err
	}
	sink := telemetry.Recorder{History: m.record, Next: m.Service}
	pipeline = telemetry.NewPipeline(m.Service, validator, sink, telemetry.NewMetrics(m.Registry), log, nil)

	proxies, _ := parseProxies(c.TrustedProxies) // checked by Validate
	if m.web, err = web.New(web.Config{
		Addr: c.HTTP, Dispatch: m.Service, Events: bus, AreaGeoJSON: areaJSON, Access: m.Access, TLS: httpTLS,
		TrustedProxies: proxies,
		Ready:          m.ready,
		Metrics:        promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}),
		Registry:       m.Registry, Logger: log,
	}); err != nil {
		return err
	}

	if c.PprofListen != "" {
		if m.pprof, err = newPprof(c.PprofListen, log); err != nil {
			return err
		}
		closers = append(closers, m.pprof.Close)
	}

	// The kpi websocket message: the ledger and coverage of each
	// jurisdiction, whenever they change.
	kpis := dispatch.NewKPIFeed(m.Service, dispatch.KPIFeedConfig{Events: bus, Every: c.KPIInterval, Logger: log})

	var d *demo
	if c.Demo {
		if d, err = newDemo(ctx, m, log); err != nil {
			return err
		}
	}

	ctx, m.cancel = context.WithCancel(context.Background())
	g, ctx := errgroup.WithContext(ctx)
	m.group = g
	if m.broker != nil {
		g.Go(func() error { return m.broker.Run(ctx) })
	} else {
		g.Go(func() error { return m.ingester.Run(ctx) })
	}
	g.Go(func() error { return m.web.Run(ctx) })
	if m.pprof != nil {
		g.Go(func() error { return m.pprof.Run(ctx) })
	}
	// Sessions ended elsewhere on the bus leave this server's memory too.
	g.Go(func() error { return m.Access.Watch(ctx, bus) })
	// The audit log grows for ever: check it beside serving, not before.
	g.Go(func() error {
		if n, head, err := verifyAudit(ctx, m.record); err != nil {
			if ctx.Err() == nil {
				log.Error("AUDIT LOG BROKEN: investigate before trusting it", "err", err)
			}
		} else {
			log.Info("audit log intact", "entries", n, "head_seq", head.Seq, "head_hash", head.Hash)
		}
		return nil
	})
	g.Go(func() error { return maintain(ctx, m.record, m.Access, c.Retention, log) })
	// The lifecycle's loops: commands reach terminals that were away, and
	// an assignment nobody acknowledges raises the alarm.
	g.Go(func() error { return courier.Run(ctx) })
	if acks != nil {
		g.Go(func() error { return acks.Run(ctx) })
	}
	g.Go(func() error { return m.Service.ConsentExpiry().Run(ctx) })
	g.Go(func() error { return kpis.Run(ctx) })
	if d != nil {
		// The simulated fleet stops before the broker, as real terminals
		// would outlive a server restart, so that it can say goodbye.
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		m.stopDemo = func() error { cancel(); return <-done }
	}
	return nil
}

// ingestClientID is the configured id, or lifelined-<hostname>: stable
// across restarts of one instance, different between instances.
func ingestClientID(configured string) string {
	if configured != "" {
		return configured
	}
	host, _ := os.Hostname()
	id := []byte(mqtt.ServerClientPrefix)
	for _, r := range []byte(host) {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			id = append(id, r)
		}
	}
	return string(id)
}

// unitRate is the broker's per-terminal limit: 0 means none.
func unitRate(perSecond float64) rate.Limit {
	if perSecond == 0 {
		return rate.Inf
	}
	return rate.Limit(perSecond)
}

// mqttConnCap is the embedded broker's cap on connections: configured,
// or three quarters of the file descriptor limit (raised to the hard
// limit first where the system allows), the rest being for the HTTP API,
// consoles, the store and the files; at most the broker's default. It
// logs what it found.
func mqttConnCap(configured int, log *slog.Logger) int {
	soft, hard, err := fileLimit()
	if err != nil {
		log.Warn("file descriptor limit unknown", "err", err)
	}
	capped := configured
	if capped == 0 {
		capped = int(mqtt.DefaultMaxClients + mqtt.DefaultMaxClients/10)
		if soft > 0 {
			capped = int(min(uint64(capped), max(soft*3/4, 64)))
		}
	}
	log.Info("file descriptors", "limit", soft, "hard_limit", hard, "mqtt_max_conns", capped)
	if soft > 0 && uint64(capped) > soft*3/4 {
		log.Warn("--mqtt-max-conns leaves few file descriptors for the rest of the server: raise the limit (ulimit -n, LimitNOFILE=)",
			"mqtt_max_conns", capped, "limit", soft)
	}
	return capped
}

// denied records a refusal by the broker in the audit log (the broker
// limits how often it calls this, so a flood cannot flood the log).
func (m *Main) denied(client, reason, topic string) {
	m.Access.Audit(context.Background(), "mqtt:"+client, dispatch.AuditACLDenied, topic, map[string]string{"reason": reason})
}

// loadTLS reads a certificate and key pair; none gives a nil config.
func loadTLS(flag, cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, fmt.Errorf("%s and its key must be given together", flag)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// validator is the telemetry gate, seeded with each unit's last stored
// fix so that after a restart replayed or older fixes are still told apart.
func (m *Main) validator(ctx context.Context) (*telemetry.Validator, error) {
	v := telemetry.NewValidator(telemetry.DefaultLimits, nil)
	latest, err := m.record.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore telemetry: %w", err)
	}
	for _, f := range latest {
		v.Seed(f)
	}
	return v, nil
}

// bootstrap creates the first administrator: with LIFELINE_ADMIN_PASSWORD
// when set, otherwise with a one-time password printed once, here.
func (m *Main) bootstrap(ctx context.Context) error {
	once, err := m.Access.Bootstrap(ctx, m.Config.AdminPassword)
	if err != nil {
		return fmt.Errorf("create the first administrator: %w", err)
	}
	if once != "" {
		m.Logger.Warn("first start: created user admin with a one-time password; sign in and keep it safe, it is not shown again",
			"username", "admin", "password", once)
	}
	return nil
}

// ready is /readyz: the record answers and can write (a write that failed
// for want of room fails readiness until the store's probe writes again),
// and the broker is up.
func (m *Main) ready(ctx context.Context) error {
	if err := m.record.Ping(ctx); err != nil {
		return fmt.Errorf("the record does not answer or cannot write: %w", err)
	}
	if !m.connected() {
		return errors.New("not connected to the MQTT broker " + redacted(m.mqttURL))
	}
	return nil
}

// Close stops every part and waits for them.
func (m *Main) Close() error {
	if m.cancel == nil {
		return nil
	}
	var demoErr error
	if m.stopDemo != nil {
		demoErr = m.stopDemo()
		m.stopDemo = nil
	}
	m.cancel()
	err := cmp.Or(m.group.Wait(), demoErr)
	// Everything that writes has stopped: the store commits what it holds.
	err = cmp.Or(err, m.record.Close())
	if m.unlock != nil {
		err = cmp.Or(err, m.unlock())
		m.unlock = nil
	}
	m.cancel = nil
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func loadArea(path string) (*dispatch.Area, error) {
	if path == "" {
		return geojson.Demo(), nil
	}
	return geojson.LoadFile(path)
}

// redacted hides the password of a URL (--mqtt-url may carry the ingest
// client's credentials) wherever it is shown: logs, /readyz.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// withHost makes a listen address usable from this machine: a wildcard
// host (":8080", "[::]:1883") becomes host, a browser's "localhost" or a
// client's "127.0.0.1".
func withHost(a net.Addr, host string) string {
	h, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
		host = h
	}
	return net.JoinHostPort(host, port)
}

type handlerFunc func(ctx context.Context, topic string, payload []byte) error

func (f handlerFunc) Handle(ctx context.Context, topic string, payload []byte) error {
	return f(ctx, topic, payload)
}
