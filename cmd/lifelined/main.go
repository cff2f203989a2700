// Command lifelined is the Lifeline server: MQTT telemetry ingest, the
// dispatch engine, the HTTP API, the live websocket and the console.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
	"github.com/lifeline-ems/lifeline/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, errHelp) {
			fmt.Fprintln(os.Stderr, "lifelined:", err)
		}
		os.Exit(1)
	}
}

var errHelp = errors.New("help requested")

// run is main without the process: parse, start, wait for ctx, close.
func run(ctx context.Context, args []string, stderr io.Writer) error {
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
	m.Logger.Info("lifeline is up", "console", "http://"+displayAddr(m.HTTPAddr())+"/", "mqtt", m.MQTTURL())
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
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

	broker   *mqtt.Broker
	ingester *mqtt.Ingester
	web      *web.Server
	mqttURL  string

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
	if c.PostgresURL != "" {
		return fmt.Errorf("--postgres-url is not supported by this version yet: the durable PostgreSQL store is being built")
	}
	if c.RedisURL != "" {
		return fmt.Errorf("--redis-url is not supported by this version yet: shared live state is being built")
	}
	log := m.Logger
	if m.Area, err = loadArea(c.Area); err != nil {
		return err
	}
	areaJSON, err := geojson.Encode(m.Area)
	if err != nil {
		return fmt.Errorf("area: %w", err)
	}

	m.Registry = prometheus.NewRegistry()
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.mqttURL = c.MQTTURL
	if c.MQTTURL == "" {
		if m.broker, err = mqtt.NewBroker(mqtt.BrokerConfig{Listen: c.MQTTListen}, log); err != nil {
			return err
		}
		m.mqttURL = "tcp://" + loopback(m.broker.Addr())
	}

	// The ingester hands messages to the pipeline, the pipeline to the
	// service, and the service sends commands through the ingester: bind
	// the pipeline late to close the loop.
	var pipeline *telemetry.Pipeline
	m.ingester = mqtt.NewIngester(mqtt.ClientConfig{URL: m.mqttURL, Shared: c.Shared}, handlerFunc(func(ctx context.Context, topic string, payload []byte) error {
		return pipeline.Handle(ctx, topic, payload)
	}), log)
	bus := dispatch.NewBus()
	history := memory.NewTracks(20000)
	audit := memory.NewAudit()
	m.Access, err = dispatch.NewAccess(dispatch.AccessConfig{Users: memory.NewUsers(), Auditor: audit, Area: m.Area, Logger: log})
	if err != nil {
		m.closeBroker()
		return err
	}
	m.Service, err = dispatch.NewService(ctx, dispatch.Config{
		Area: m.Area, Store: memory.NewStore(), Tracks: history, Auditor: audit,
		Events: bus, Commands: m.ingester, Logger: log,
	})
	if err == nil {
		err = m.bootstrap(ctx)
	}
	if err != nil {
		m.closeBroker()
		return err
	}
	sink := telemetry.Recorder{History: history, Next: m.Service}
	pipeline = telemetry.NewPipeline(m.Service, telemetry.NewValidator(telemetry.DefaultLimits, nil), sink, telemetry.NewMetrics(m.Registry), log, nil)

	m.web, err = web.New(web.Config{
		Addr: c.HTTP, Dispatch: m.Service, Events: bus, AreaGeoJSON: areaJSON, Access: m.Access,
		Ready:    m.ready,
		Metrics:  promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}),
		Registry: m.Registry, Logger: log,
	})
	if err != nil {
		m.closeBroker()
		return err
	}

	ctx, m.cancel = context.WithCancel(context.Background())
	g, ctx := errgroup.WithContext(ctx)
	m.group = g
	if m.broker != nil {
		g.Go(func() error { return m.broker.Run(ctx) })
	}
	g.Go(func() error { return m.ingester.Run(ctx) })
	g.Go(func() error { return m.web.Run(ctx) })
	if c.Demo {
		// The simulated fleet stops before the broker, as real terminals
		// would outlive a server restart, so that it can say goodbye.
		d := newDemo(m.Area, m.Service, m.mqttURL, c, log)
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		m.stopDemo = func() error { cancel(); return <-done }
	}
	return nil
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

func (m *Main) ready(ctx context.Context) error {
	if !m.ingester.Connected() {
		return errors.New("not connected to the MQTT broker " + m.mqttURL)
	}
	return nil
}

func (m *Main) closeBroker() {
	if m.broker != nil {
		_ = m.broker.Close()
	}
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

// loopback gives a dialable address for a listener on a wildcard address.
func loopback(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

type handlerFunc func(ctx context.Context, topic string, payload []byte) error

func (f handlerFunc) Handle(ctx context.Context, topic string, payload []byte) error {
	return f(ctx, topic, payload)
}
