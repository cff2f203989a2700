package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// Config is everything lifelined can be told. Every flag has an environment
// variable: LIFELINE_ and the flag's name in upper snake case.
type Config struct {
	HTTP        string
	MQTTListen  string
	MQTTURL     string
	PostgresURL string
	RedisURL    string
	DataDir     string
	Area        string
	Demo        bool
	// DemoSpeedup compresses the simulated fleet's scenario in --demo.
	DemoSpeedup float64
	// DemoCalls is how often --demo takes and assigns a simulated call.
	DemoCalls time.Duration
	// Shared is the MQTT shared-subscription group for several instances
	// on one external broker; empty for a single instance.
	Shared string
	// MQTTClientID is the ingest client's id on an external broker: stable
	// across restarts (its persistent session holds what arrived while it
	// was down) and different for every instance. Default lifelined-<host>.
	MQTTClientID string
	// TLS for HTTP and for the embedded broker: certificate and key files.
	TLSCert, TLSKey         string
	MQTTTLSCert, MQTTTLSKey string
	// Retention is how long position and video history is kept (0: for
	// ever). The dispatch record and the audit log are never dropped.
	Retention time.Duration
	// TrustedProxies lists the reverse proxies (addresses or CIDRs, comma
	// separated) whose X-Forwarded-For names the client.
	TrustedProxies string
	// ConsentTimeout is how long a request for another county's unit
	// waits for that county's answer before it expires.
	ConsentTimeout time.Duration
	// UnitRate is how many messages per second one terminal may publish
	// on the embedded broker (bursts of 100 pass); 0 lifts the limit.
	UnitRate float64
	// MQTTMaxConns caps the TCP connections the embedded broker holds,
	// idle ones before CONNECT included; 0 derives it from the file
	// descriptor limit (mqttConnCap).
	MQTTMaxConns int
	// KPIInterval is how often the kpi websocket message may change, per
	// jurisdiction.
	KPIInterval time.Duration
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// PprofListen is where Go's profiles (/debug/pprof/) are served, on a
	// listener of their own; "" (the default) serves none. A bare port is
	// bound on loopback.
	PprofListen string
	// AdminPassword is the first administrator's password, from
	// LIFELINE_ADMIN_PASSWORD only (never a flag: flags show in ps).
	AdminPassword string

	// AckTimeout is how long a terminal has to acknowledge an assignment
	// (0: never checked); AckPolicy what happens then: alert, offer or
	// reassign.
	AckTimeout time.Duration
	AckPolicy  string
	// InferStatus is what telemetry-inferred statuses do: offer, apply or off.
	InferStatus string
}

// DefaultConfig returns the embedded default of contract v1.
func DefaultConfig() Config {
	return Config{
		HTTP: ":8080", MQTTListen: ":1883", DataDir: "./data", UnitRate: 20, Retention: 400 * 24 * time.Hour,
		DemoSpeedup: 5, DemoCalls: 45 * time.Second, KPIInterval: 5 * time.Second, LogLevel: "info", ConsentTimeout: 60 * time.Second,
		AckTimeout: dispatch.DefaultAckTimeout, AckPolicy: string(dispatch.AckOffer), InferStatus: string(dispatch.InferOffer),
	}
}

// envName is the variable that stands in for a flag.
func envName(flagName string) string {
	return "LIFELINE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse reads flags from args, with the environment as each flag's default.
func (c *Config) Parse(name string, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.HTTP, "http", c.HTTP, "HTTP listen address (API, websocket, console, metrics)")
	fs.StringVar(&c.MQTTListen, "mqtt-listen", c.MQTTListen, `embedded MQTT broker listen address; "" disables it`)
	fs.StringVar(&c.MQTTURL, "mqtt-url", c.MQTTURL, "external MQTT broker, e.g. tcp://127.0.0.1:1883; when set, no embedded broker")
	fs.StringVar(&c.PostgresURL, "postgres-url", c.PostgresURL, "PostgreSQL DSN; empty uses the embedded store under --data-dir")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL; when set, live state and events are shared through Redis")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "embedded store location")
	fs.StringVar(&c.Area, "area", c.Area, "area file (GeoJSON, docs/AREA.md); empty uses the built-in Fushun County demo")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "run an in-process simulated fleet and simulated calls")
	fs.Float64Var(&c.DemoSpeedup, "demo-speedup", c.DemoSpeedup, "time compression of the --demo scenario")
	fs.DurationVar(&c.DemoCalls, "demo-calls", c.DemoCalls, "how often --demo takes and assigns a simulated call (0: never)")
	fs.StringVar(&c.Shared, "mqtt-shared", c.Shared, "MQTT shared-subscription group when several instances share one broker")
	fs.StringVar(&c.MQTTClientID, "mqtt-client-id", c.MQTTClientID, "ingest client id on an external broker; stable per instance (default lifelined-<hostname>)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "HTTPS certificate file (PEM); with --tls-key, HTTP is served over TLS only")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "HTTPS private key file (PEM)")
	fs.StringVar(&c.MQTTTLSCert, "mqtt-tls-cert", c.MQTTTLSCert, "embedded broker certificate file (PEM); with --mqtt-tls-key, terminals connect over TLS only")
	fs.StringVar(&c.MQTTTLSKey, "mqtt-tls-key", c.MQTTTLSKey, "embedded broker private key file (PEM)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "reverse proxies (addresses or CIDRs, comma separated) whose X-Forwarded-For names the client")
	fs.DurationVar(&c.Retention, "history-retention", c.Retention, "how long position and video history is kept (0: for ever); calls and the audit log are kept for ever")
	fs.Float64Var(&c.UnitRate, "mqtt-unit-rate", c.UnitRate, "messages per second one terminal may publish on the embedded broker (bursts of 100 pass; 0: no limit)")
	fs.IntVar(&c.MQTTMaxConns, "mqtt-max-conns", c.MQTTMaxConns, "TCP connections the embedded broker holds at once, idle ones included; more are closed at once (0: three quarters of the file descriptor limit, at most 11000)")
	fs.DurationVar(&c.ConsentTimeout, "consent-timeout", c.ConsentTimeout, "how long a request for another county's unit waits for that county's answer")
	fs.DurationVar(&c.KPIInterval, "kpi-interval", c.KPIInterval, "how often the kpi websocket message may change, per jurisdiction")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.AckTimeout, "ack-timeout", c.AckTimeout, "how long a terminal has to acknowledge an assignment before the dispatchers are alerted (0: never)")
	fs.StringVar(&c.AckPolicy, "ack-timeout-policy", c.AckPolicy, "on an ack timeout: alert, offer (name the next candidate) or reassign (assign it)")
	fs.StringVar(&c.InferStatus, "infer-status", c.InferStatus, "statuses telemetry shows (on scene, at hospital): offer them to the dispatchers, apply them, or off")
	fs.StringVar(&c.PprofListen, "pprof-listen", c.PprofListen, `serve /debug/pprof on this address, apart from the API (":6060" is loopback; give a host to expose it); "" serves none`)
	var bad error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := lookup(getenv, envName(f.Name))
		if !ok || bad != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			bad = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
		}
	})
	if bad != nil {
		return bad
	}
	c.AdminPassword, _ = lookup(getenv, "LIFELINE_ADMIN_PASSWORD")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c.Validate()
}

func lookup(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		v, ok := os.LookupEnv(name)
		return v, ok
	}
	v := getenv(name)
	return v, v != ""
}

// Validate checks combinations that cannot work.
func (c Config) Validate() error {
	if c.MQTTURL == "" && c.MQTTListen == "" {
		return fmt.Errorf("no MQTT broker: set --mqtt-url for an external broker or --mqtt-listen for the embedded one")
	}
	if c.Demo && (c.MQTTTLSCert != "" || c.MQTTURL != "") {
		return fmt.Errorf("--demo runs its fleet on the embedded broker without TLS: drop --mqtt-url/--mqtt-tls-cert, or run cmd/fleetsim against your broker")
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		return err
	}
	if c.UnitRate < 0 {
		return fmt.Errorf("--mqtt-unit-rate %v: want 0 (no limit) or more", c.UnitRate)
	}
	if c.MQTTMaxConns < 0 {
		return fmt.Errorf("--mqtt-max-conns %d: want 0 (from the descriptor limit) or more", c.MQTTMaxConns)
	}
	if c.ConsentTimeout <= 0 {
		return fmt.Errorf("--consent-timeout %v: want more than 0", c.ConsentTimeout)
	}
	if c.KPIInterval <= 0 {
		return fmt.Errorf("--kpi-interval %v: want > 0", c.KPIInterval)
	}
	if c.DemoSpeedup <= 0 {
		return fmt.Errorf("--demo-speedup %v: want > 0", c.DemoSpeedup)
	}
	if c.AckTimeout < 0 {
		return fmt.Errorf("--ack-timeout %v: want 0 (never) or more", c.AckTimeout)
	}
	switch dispatch.AckPolicy(c.AckPolicy) {
	case dispatch.AckAlert, dispatch.AckOffer, dispatch.AckReassign:
	default:
		return fmt.Errorf("--ack-timeout-policy %q: want alert, offer or reassign", c.AckPolicy)
	}
	switch dispatch.InferPolicy(c.InferStatus) {
	case dispatch.InferOffer, dispatch.InferApply, dispatch.InferOff:
	default:
		return fmt.Errorf("--infer-status %q: want offer, apply or off", c.InferStatus)
	}
	if c.PprofListen != "" {
		if _, err := pprofAddr(c.PprofListen); err != nil {
			return err
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func (c Config) String() string {
	return "http=" + c.HTTP + " mqtt-listen=" + strconv.Quote(c.MQTTListen) + " mqtt-url=" + strconv.Quote(c.MQTTURL) + " area=" + strconv.Quote(c.Area) + " demo=" + strconv.FormatBool(c.Demo)
}

// parseProxies reads --trusted-proxies: addresses (a /32 or /128) or CIDRs.
func parseProxies(list string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if ip := net.ParseIP(item); ip != nil {
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(item)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither an address nor a CIDR", item)
		}
		out = append(out, n)
	}
	return out, nil
}
