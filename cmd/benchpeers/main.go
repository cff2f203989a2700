package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hub" {
		// The baseline websocket hub, run by the harness as a child.
		if err := runHub(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "benchpeers hub:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		os.Exit(2)
	}
	code := run(ctx, cfg, os.Stdout, os.Stderr)
	os.Exit(code)
}

// config is what the harness is told.
type config struct {
	quick            bool
	rounds           int
	duration, warmup time.Duration
	step             time.Duration
	sizes            []int
	clients          int
	calls            int
	terminals        int
	inflight         int
	consoles         int
	seed             uint64
	pairs            []string
	out              string
	lifelined        string
	tile38           string
	mosquitto        string
	redis            string
	postgres         string
	verbose          bool
}

// allPairs are the pairs in the order they run.
var allPairs = []string{"decode", "served", "ingest", "fanout", "latency"}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("benchpeers", flag.ContinueOnError)
	fs.BoolVar(&c.quick, "quick", false, "a smoke test: tiny sizes, one short round")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every side of a pair once, and the table shows medians")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long each side is measured in a round")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before each measurement")
	fs.DurationVar(&c.step, "step", 3*time.Second, "how long each rate of the fan-out sweep is held")
	sizes := fs.String("sizes", "1000,10000,100000", "fleet sizes for the served nearest unit")
	fs.IntVar(&c.clients, "clients", 32, "concurrent keep-alive clients for served calls")
	fs.IntVar(&c.calls, "calls", 256, "call points (incidents) queried in turn")
	fs.IntVar(&c.terminals, "terminals", 1000, "MQTT terminals publishing in the ingest pairs")
	fs.IntVar(&c.inflight, "inflight", 2, "unacknowledged QoS 1 messages per terminal in the ingest pairs")
	fs.IntVar(&c.consoles, "consoles", 1000, "websocket consoles in the fan-out and latency pairs")
	fs.Uint64Var(&c.seed, "seed", 9, "seed of the fleet and the call points")
	pairs := fs.String("pairs", strings.Join(allPairs, ","), "pairs to run: "+strings.Join(allPairs, ", "))
	fs.StringVar(&c.out, "out", "", "also write the report to this file (markdown)")
	fs.StringVar(&c.lifelined, "lifelined", "", "a lifelined binary to measure (default: go build ./cmd/lifelined into a temporary directory)")
	fs.StringVar(&c.tile38, "tile38", getenv("TILE38_SERVER"), "tile38-server binary (default $TILE38_SERVER, else tile38-server on PATH)")
	fs.StringVar(&c.mosquitto, "mosquitto", "", "mosquitto binary (default mosquitto on PATH or /usr/sbin/mosquitto)")
	fs.StringVar(&c.redis, "redis", "", "redis-server binary (default redis-server on PATH)")
	pg := getenv("LIFELINE_TEST_POSTGRES_URL")
	if pg == "" {
		pg = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	fs.StringVar(&c.postgres, "postgres", pg, `PostgreSQL server (a database is created and dropped on it); "" skips Lifeline on PostgreSQL`)
	fs.BoolVar(&c.verbose, "v", false, "copy the children's output to stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		quick := map[string]func(){
			"rounds":    func() { c.rounds = 1 },
			"duration":  func() { c.duration = time.Second },
			"warmup":    func() { c.warmup = 200 * time.Millisecond },
			"step":      func() { c.step = time.Second },
			"sizes":     func() { *sizes = "200" },
			"calls":     func() { c.calls = 16 },
			"terminals": func() { c.terminals = 20 },
			"consoles":  func() { c.consoles = 20 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-sizes: %q is not a positive number", s)
		}
		c.sizes = append(c.sizes, n)
	}
	for _, p := range strings.Split(*pairs, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPairs, p) {
			return c, fmt.Errorf("-pairs: unknown pair %q (want some of %s)", p, strings.Join(allPairs, ", "))
		}
		c.pairs = append(c.pairs, p)
	}
	switch {
	case c.rounds < 1:
		return c, errors.New("-rounds: want 1 or more")
	case c.duration <= 0 || c.step <= 0 || c.warmup < 0:
		return c, errors.New("-duration and -step must be positive and -warmup not negative")
	case c.clients < 1 || c.calls < 1 || c.terminals < 1 || c.consoles < 1 || c.inflight < 1:
		return c, errors.New("-clients, -calls, -terminals, -inflight and -consoles must be positive")
	}
	return c, nil
}

// harness runs the pairs and keeps their results.
type harness struct {
	cfg      config
	dir      string // temporary, removed at the end
	bin      string // lifelined
	stderr   io.Writer
	childLog io.Writer // where children's output goes besides their tails
	mosq     *peer

	sections []*section
	summ     [][]string
	dirs     int
}

// run runs the harness and returns the exit code: 0, or 1 when a pair
// failed (a missing peer is not a failure: its pair is skipped and the
// report says so).
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	defer stopAll()
	dir, err := os.MkdirTemp("", "benchpeers-")
	if err != nil {
		fmt.Fprintln(stderr, "benchpeers:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	h := &harness{cfg: cfg, dir: dir, stderr: stderr}
	if cfg.verbose {
		h.childLog = stderr
	}
	started, measured := time.Now(), commit()
	load0 := loadAverage()
	h.progress("building lifelined")
	if h.bin, err = buildLifelined(ctx, cfg.lifelined, dir); err != nil {
		fmt.Fprintln(stderr, "benchpeers:", err)
		return 1
	}
	code := 0
	for _, name := range cfg.pairs {
		if ctx.Err() != nil {
			break
		}
		fn := map[string]func(context.Context) error{
			"decode": h.decode, "served": h.served, "ingest": h.ingest, "fanout": h.fanout, "latency": h.latency,
		}[name]
		err := fn(ctx)
		switch {
		case err == nil:
		case errors.Is(err, errSkip):
			h.progress("%s: %v", name, err)
			h.note(name, "Skipped: "+strings.TrimPrefix(err.Error(), errSkip.Error()+": "))
		default:
			code = 1
			fmt.Fprintf(stderr, "benchpeers: %s: %v\n", name, err)
			h.note(name, "Failed: "+err.Error())
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "benchpeers: interrupted")
		return 1
	}
	report := h.report(started, measured, load0, loadAverage())
	fmt.Fprint(stdout, report)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(stderr, "benchpeers:", err)
			return 1
		}
	}
	return code
}

// progress prints a line about what the harness is doing.
func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(h.stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// tempDir returns a new directory under the harness's temporary one.
func (h *harness) tempDir(name string) string {
	h.dirs++
	d := filepath.Join(h.dir, fmt.Sprintf("%s-%d", name, h.dirs))
	_ = os.MkdirAll(d, 0o755)
	return d
}

// mosquitto returns the harness's own mosquitto, started on first use.
func (h *harness) mosquitto(ctx context.Context) (*peer, error) {
	if h.mosq != nil {
		return h.mosq, nil
	}
	bin, err := findBinary(h.cfg.mosquitto, "mosquitto", "/usr/sbin/mosquitto")
	if err != nil {
		return nil, skipf("mosquitto %v (install Debian's mosquitto, or pass -mosquitto)", err)
	}
	h.mosq, err = startMosquitto(ctx, bin, h.dir, h.childLog)
	return h.mosq, err
}

// side is one side of a pair: something measured once per round.
type side struct {
	name string
	run  func(context.Context) (measure, error)
}

// rounds runs every side once per round, the sides of a round back to back
// and each round starting with the next side, and returns each side's
// median.
func (h *harness) rounds(ctx context.Context, what string, sides []side) (map[string]measure, error) {
	got := map[string][]measure{}
	for r := range h.cfg.rounds {
		for k := range sides {
			s := sides[(r+k)%len(sides)]
			m, err := s.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", s.name, r+1, err)
			}
			h.progress("%s, round %d/%d: %-26s %s", what, r+1, h.cfg.rounds, s.name, m)
			got[s.name] = append(got[s.name], m)
		}
	}
	out := map[string]measure{}
	for name, ms := range got {
		out[name] = median(ms)
	}
	return out, nil
}

func (m measure) String() string {
	s := fmt.Sprintf("%s/s", rate(m.Rate))
	if m.P50 > 0 {
		s += fmt.Sprintf(", p50 %s, p99 %s", ms(m.P50), ms(m.P99))
	}
	if m.Errors > 0 {
		s += fmt.Sprintf(", %d errors", m.Errors)
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s += fmt.Sprintf(", %s %.4g", k, m.Extra[k])
	}
	return s
}

// median takes the median of each figure over the rounds; errors are
// those of the round with the median rate.
func median(ms []measure) measure {
	pick := func(f func(measure) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	byRate := slices.Clone(ms)
	slices.SortFunc(byRate, func(a, b measure) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	out := byRate[len(byRate)/2]
	out.Rate = pick(func(m measure) float64 { return m.Rate })
	out.P50 = time.Duration(pick(func(m measure) float64 { return float64(m.P50) }))
	out.P99 = time.Duration(pick(func(m measure) float64 { return float64(m.P99) }))
	out.Extra = map[string]float64{}
	for k := range ms[0].Extra {
		out.Extra[k] = pick(func(m measure) float64 { return m.Extra[k] })
	}
	return out
}

// loadAverage is the 1-minute load average, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// commit describes the code measured: the commit, and whether the tree
// had changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
