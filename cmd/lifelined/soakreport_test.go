package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// soakSample is what /metrics said at one moment of a soak.
type soakSample struct {
	At         time.Duration // since the load began
	RSS        float64       // process_resident_memory_bytes
	Heap       float64       // go_memstats_heap_inuse_bytes
	Idle       float64       // go_memstats_heap_idle_bytes less go_memstats_heap_released_bytes: free heap the process still holds
	released   float64
	Goroutines float64 // go_goroutines
	FDs        float64 // process_open_fds
	Feeds      float64 // lifeline_live_clients
	Fixes      float64 // lifeline_telemetry_fixes_total
	Dropped    float64 // lifeline_live_dropped_total
	CPU        float64 // process_cpu_seconds_total
	HarnessCPU float64 // CPU seconds of this test process (terminals, consoles, dispatcher)
	// Rejected counts dropped telemetry by "kind/reason", non-zero only.
	Rejected map[string]float64
	Load     string // the machine's load averages
}

// parseMetrics reads the text exposition of /metrics into a sample.
func parseMetrics(r io.Reader) (soakSample, error) {
	s := soakSample{Rejected: map[string]float64{}}
	gauges := map[string]*float64{
		"process_resident_memory_bytes": &s.RSS, "go_memstats_heap_inuse_bytes": &s.Heap,
		"go_goroutines": &s.Goroutines, "process_open_fds": &s.FDs, "lifeline_live_clients": &s.Feeds,
		"lifeline_telemetry_fixes_total": &s.Fixes, "lifeline_live_dropped_total": &s.Dropped,
		"process_cpu_seconds_total": &s.CPU, "go_memstats_heap_idle_bytes": &s.Idle, "go_memstats_heap_released_bytes": &s.released,
	}
	seen := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return s, fmt.Errorf("metrics line %q: %w", line, err)
		}
		name, labels, _ := strings.Cut(series, "{")
		if p, ok := gauges[name]; ok && labels == "" {
			*p = v
			seen++
		}
		if name == "lifeline_telemetry_rejected_total" && v > 0 {
			s.Rejected[label(labels, "kind")+"/"+label(labels, "reason")] += v
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	s.Idle -= s.released
	if s.RSS == 0 || s.Goroutines == 0 || s.FDs == 0 {
		return s, fmt.Errorf("metrics without process_resident_memory_bytes, go_goroutines or process_open_fds (%d known series)", seen)
	}
	return s, nil
}

// selfCPU returns the CPU seconds this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// label returns the value of label name in a series' label text.
func label(labels, name string) string {
	_, v, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// sample reads /metrics once.
func (h *soakHTTP) sample(tb testing.TB, at time.Duration) soakSample {
	tb.Helper()
	s, err := h.trySample(context.Background(), at)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (h *soakHTTP) trySample(ctx context.Context, at time.Duration) (soakSample, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+"/metrics", nil)
	if err != nil {
		return soakSample{}, err
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return soakSample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return soakSample{}, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	s, err := parseMetrics(resp.Body)
	s.At, s.Load, s.HarnessCPU = at, loadAverage(), selfCPU()
	return s, err
}

// sampleEvery samples every d from began until ctx is done; a failed
// read is skipped (the machine is loaded; the next one counts).
func (h *soakHTTP) sampleEvery(ctx context.Context, began time.Time, d time.Duration) []soakSample {
	var out []soakSample
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		if s, err := h.trySample(ctx, time.Since(began)); err == nil {
			out = append(out, s)
		}
	}
}

// settle waits, after the load stopped, for the goroutines and file
// descriptors of the connections to go, and returns the last sample.
func (h *soakHTTP) settle(tb testing.TB, start soakSample) soakSample {
	tb.Helper()
	var s soakSample
	for deadline := time.Now().Add(30 * time.Second); ; {
		s = h.sample(tb, 0)
		if s.Goroutines <= start.Goroutines+settleSlack(start.Goroutines) && s.FDs <= start.FDs+fdSlack || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Second)
	}
}

// After the load, the server is back where it started within these: a
// few goroutines of work in flight, and the database pool's connections
// (opened under load, idle now).
const fdSlack = 32

func settleSlack(n float64) float64 { return max(20, n/10) }

// trend is how one gauge went during a soak, and the bounds it is judged by.
type trend struct {
	Name  string
	Scale float64 // divides values for printing (MB)
	Unit  string

	Start, Warm, End float64 // before the load, first sample after warm-up, last
	Min, Max, Mean   float64 // after warm-up
	// Growth is what a least-squares line through the samples after
	// warm-up gains over them, in the gauge's unit.
	Growth  float64
	Samples int // after warm-up

	MaxRatio  float64 // Max/Min may be at most this
	MaxGrowth float64 // Growth may be at most this fraction of Mean...
	Slack     float64 // ...or this much, whichever is more
}

// Flatness bounds, after warm-up: max/min within MaxRatio, and the line
// fitted through the samples gaining at most MaxGrowth of the mean (or
// Slack). Resident memory saws with the garbage collector by ±10%, so
// its range gets room and its line needs the whole 8 minutes after a 10
// minute run's warm-up to settle (a fit over the second half alone moved
// by ±30 MB on a steady server); 10% of ~300 MB over those 8 minutes
// catches a leak of 1 MB every 10 s (TestTrendFlat). Goroutines and
// descriptors follow connections, which are steady after the ramp: a
// leak of one goroutine per call (a call every 3 s) is over their bound.
var (
	rssBound       = trend{Name: "rss", Scale: 1 << 20, Unit: "MB", MaxRatio: 1.5, MaxGrowth: 0.10, Slack: 16 << 20}
	goroutineBound = trend{Name: "goroutines", Scale: 1, MaxRatio: 1.2, MaxGrowth: 0.01, Slack: 50}
	fdBound        = trend{Name: "fds", Scale: 1, MaxRatio: 1.1, MaxGrowth: 0.01, Slack: 20}
)

// newTrend computes bound's trend of values (one per sample time at)
// after warmup; start is the value before the load.
func newTrend(bound trend, at []time.Duration, values []float64, warmup time.Duration, start float64) trend {
	tr := bound
	tr.Start = start
	var xs, ys []float64
	for i, a := range at {
		if a >= warmup {
			xs, ys = append(xs, a.Seconds()), append(ys, values[i])
		}
	}
	tr.Samples = len(ys)
	if len(ys) == 0 {
		return tr
	}
	tr.Warm, tr.End = ys[0], ys[len(ys)-1]
	tr.Min, tr.Max = slices.Min(ys), slices.Max(ys)
	for _, y := range ys {
		tr.Mean += y / float64(len(ys))
	}
	if len(xs) >= 2 {
		tr.Growth = slope(xs, ys) * (xs[len(xs)-1] - xs[0])
	}
	return tr
}

// slope is the least-squares slope of y over x.
func slope(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i] / float64(len(x))
		my += y[i] / float64(len(y))
	}
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// flat returns an error saying how tr is not flat after warm-up.
func (tr trend) flat() error {
	if tr.Samples < 6 {
		return fmt.Errorf("%s: %d samples after warm-up, too few to judge", tr.Name, tr.Samples)
	}
	if tr.Min <= 0 || tr.Max/tr.Min > tr.MaxRatio {
		return fmt.Errorf("%s not flat after warm-up: from %s to %s, max/min %.2f over %.2f", tr.Name, tr.show(tr.Min), tr.show(tr.Max), tr.Max/tr.Min, tr.MaxRatio)
	}
	if limit := max(tr.MaxGrowth*tr.Mean, tr.Slack); tr.Growth > limit {
		return fmt.Errorf("%s grows: the line fitted after warm-up gains %s, over the %s allowed (%.0f%% of the mean %s)",
			tr.Name, tr.show(tr.Growth), tr.show(limit), 100*tr.MaxGrowth, tr.show(tr.Mean))
	}
	return nil
}

func (tr trend) show(v float64) string {
	if tr.Unit == "" {
		return strconv.FormatFloat(v/tr.Scale, 'f', 0, 64)
	}
	return strconv.FormatFloat(v/tr.Scale, 'f', 1, 64) + " " + tr.Unit
}

// soakReport is what a soak measured.
type soakReport struct {
	Store              string
	Config             soakConfig
	LoadStart, LoadEnd string
	Start, After       soakSample // before the load; once it stopped and settled
	Samples            []soakSample
	Fixes              fixCounts
	Calls              callCounts
	Consoles           consoleCounts
	Fleet              struct{ Fixes, Messages, Commands, Acks, Errors uint64 }
	Incidents          map[string]int
	LogBytes           int64
	Log                []logCount // the server's log lines, by level and message
	Terminal           []logCount // the terminals' warnings, by message
	PubAck             latencies  // fix taken to PUBACK
	Create, Assign     latencies  // POST /api/v1/incidents, .../assignments
}

// trends are the gauges judged for flatness.
func (r *soakReport) trends() []trend {
	at := make([]time.Duration, len(r.Samples))
	rss, gor, fds := make([]float64, len(at)), make([]float64, len(at)), make([]float64, len(at))
	for i, s := range r.Samples {
		at[i], rss[i], gor[i], fds[i] = s.At, s.RSS, s.Goroutines, s.FDs
	}
	w := r.Config.Warmup
	return []trend{
		newTrend(rssBound, at, rss, w, r.Start.RSS),
		newTrend(goroutineBound, at, gor, w, r.Start.Goroutines),
		newTrend(fdBound, at, fds, w, r.Start.FDs),
	}
}

// settled returns an error when the server kept goroutines or
// descriptors of connections that are gone.
func (r *soakReport) settled() error {
	if r.After.Goroutines > r.Start.Goroutines+settleSlack(r.Start.Goroutines) || r.After.FDs > r.Start.FDs+fdSlack {
		return fmt.Errorf("after the load: %.0f goroutines and %.0f fds, against %.0f and %.0f before it",
			r.After.Goroutines, r.After.FDs, r.Start.Goroutines, r.Start.FDs)
	}
	return nil
}

// log writes the report: every sample, then the summary.
func (r *soakReport) log(tb testing.TB) {
	tb.Helper()
	c := r.Config
	var b strings.Builder
	fmt.Fprintf(&b, "soak %s: %d terminals (fix every %s), %d consoles, a call every %s, %s (warm-up %s); load average %s at the start, %s at the end\n",
		r.Store, c.Terminals, c.Interval, c.Consoles, c.CallEvery, c.Duration, c.Warmup, r.LoadStart, r.LoadEnd)
	fmt.Fprintf(&b, "%8s %9s %9s %9s %10s %6s %6s %11s %8s %8s %8s  %s\n", "t", "rss MB", "heap MB", "idle MB", "goroutines", "fds", "feeds", "fixes", "dropped", "cpu s", "test s", "load")
	row := func(label string, s soakSample) {
		fmt.Fprintf(&b, "%8s %9.1f %9.1f %9.1f %10.0f %6.0f %6.0f %11.0f %8.0f %8.1f %8.1f  %s\n", label, s.RSS/(1<<20), s.Heap/(1<<20), s.Idle/(1<<20), s.Goroutines, s.FDs, s.Feeds, s.Fixes, s.Dropped, s.CPU, s.HarnessCPU, s.Load)
	}
	row("start", r.Start)
	for _, s := range r.Samples {
		row(s.At.Round(time.Second).String(), s)
	}
	row("after", r.After)
	for _, tr := range r.trends() {
		fmt.Fprintf(&b, "%s: start %s, after warm-up %s, end %s; after warm-up min %s max %s (max/min %.2f, bound %.2f), fitted growth after warm-up %s (bound %s)\n",
			tr.Name, tr.show(tr.Start), tr.show(tr.Warm), tr.show(tr.End), tr.show(tr.Min), tr.show(tr.Max), tr.Max/max(tr.Min, 1), tr.MaxRatio,
			tr.show(tr.Growth), tr.show(max(tr.MaxGrowth*tr.Mean, tr.Slack)))
	}
	f := r.Fixes
	fmt.Fprintf(&b, "fixes: %d acknowledged (%d of them twice), %d stored; %d acknowledged and missing, %d stored more than once, %d undecodable; %d stored without a PUBACK seen (%d of them taken in the last %s before the terminals stopped)\n",
		f.Acked, f.AckedTwice, f.Stored, f.Missing, f.Repeated, f.Undecodable, f.Unacked, f.UnackedAtStop, atStop)
	for _, m := range f.MissingFixes {
		fmt.Fprintf(&b, "  missing: %s seq %d taken %s\n", m.unit, m.seq, time.UnixMilli(m.ms).UTC().Format("15:04:05.000"))
	}
	if len(r.Samples) > 0 {
		fmt.Fprintf(&b, "rejected by the server: %v\n", r.Samples[len(r.Samples)-1].Rejected)
	}
	fmt.Fprintf(&b, "terminals: %d fixes, %d messages acknowledged, %d commands received, %d acks sent, %d errors; fix to PUBACK %s\n",
		r.Fleet.Fixes, r.Fleet.Messages, r.Fleet.Commands, r.Fleet.Acks, r.Fleet.Errors, &r.PubAck)
	for _, c := range r.Terminal {
		fmt.Fprintf(&b, "  terminal warning ×%d: %s\n", c.N, c.What)
	}
	fmt.Fprintf(&b, "calls: %d taken, %d assigned, %d conflicts, %d with no unit in range, %d failed; in the record by status: %v; create %s, assign %s\n",
		r.Calls.Taken, r.Calls.Assigned, r.Calls.Conflicts, r.Calls.NoUnit, r.Calls.Failed, r.Incidents, &r.Create, &r.Assign)
	k := r.Consoles
	fmt.Fprintf(&b, "consoles: %d messages (%d unit, %d snapshots), %.1f MB; %d dropped as too slow, %d refused over a limit, %d failed dials, %d reconnects\n",
		k.Messages, k.Units, k.Snapshots, float64(k.Bytes)/(1<<20), k.Dropped, k.Refused, k.DialFailed, k.Reconnects)
	if n := len(r.Samples); n > 0 {
		last := r.Samples[n-1]
		fmt.Fprintf(&b, "cpu: lifelined %.0f s, the test process %.0f s, over %s\n",
			last.CPU-r.Start.CPU, last.HarnessCPU-r.Start.HarnessCPU, last.At.Round(time.Second))
	}
	fmt.Fprintf(&b, "server log: %d bytes", r.LogBytes)
	for _, c := range r.Log {
		fmt.Fprintf(&b, "\n  ×%d: %s\n    first: %.400s", c.N, c.What, c.Example)
	}
	tb.Log(b.String())
}

// latencies collects durations and tells their quantiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return "none"
	}
	d := slices.Clone(l.d)
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %s p99 %s max %s (n=%d)", q(0.5), q(0.99), d[len(d)-1].Round(time.Millisecond), len(d))
}

// logCount is how often a kind of log line was seen, with the first.
type logCount struct {
	What    string
	N       int
	Example string
}

// countLog reads a server log (slog's text format) and counts its lines
// by level and message, most frequent first.
func countLog(path string) []logCount {
	f, err := os.Open(path)
	if err != nil {
		return []logCount{{What: err.Error(), N: 1}}
	}
	defer f.Close()
	counts := map[string]*logCount{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		what := line
		if _, rest, ok := strings.Cut(line, " level="); ok {
			level, rest, _ := strings.Cut(rest, " ")
			what = level + " " + logMessage(rest)
		}
		if counts[what] == nil {
			counts[what] = &logCount{What: what, Example: line}
		}
		counts[what].N++
	}
	return sortCounts(counts)
}

// logMessage returns the msg= value at the start of rest.
func logMessage(rest string) string {
	rest = strings.TrimPrefix(rest, "msg=")
	if strings.HasPrefix(rest, `"`) {
		if m, err := strconv.QuotedPrefix(rest); err == nil {
			s, _ := strconv.Unquote(m)
			return s
		}
	}
	m, _, _ := strings.Cut(rest, " ")
	return m
}

// sortCounts returns the ten most frequent counts.
func sortCounts(counts map[string]*logCount) []logCount {
	var out []logCount
	for _, c := range counts {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b logCount) int {
		if a.N != b.N {
			return b.N - a.N
		}
		return strings.Compare(a.What, b.What)
	})
	return out[:min(len(out), 10)]
}

// warnCounter is a slog handler that counts warnings and errors by
// message and error text, for the terminals' logs.
type warnCounter struct {
	mu     sync.Mutex
	counts map[string]*logCount
}

func newWarnCounter() *warnCounter { return &warnCounter{counts: map[string]*logCount{}} }

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	what := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			what += ": " + a.Value.String()
		}
		return true
	})
	if _, addr, ok := strings.Cut(what, "read tcp "); ok { // one line for every connection reset
		what = strings.Replace(what, addr, "...", 1)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.counts[what] == nil {
		w.counts[what] = &logCount{What: what}
	}
	w.counts[what].N++
	return nil
}

func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

func (w *warnCounter) top() []logCount {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sortCounts(w.counts)
}

// TestTrendFlat checks the soak's judgement of a gauge on series whose
// shape is known: steady ones pass, leaking ones do not.
func TestTrendFlat(t *testing.T) {
	const n = 60 // 10 minutes at one sample per 10 s
	series := func(f func(i int) float64) ([]time.Duration, []float64) {
		at, v := make([]time.Duration, n), make([]float64, n)
		for i := range n {
			at[i], v[i] = time.Duration(i+1)*10*time.Second, f(i)
		}
		return at, v
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name  string
		bound trend
		f     func(i int) float64
		flat  bool
	}{
		{"steady rss with noise", rssBound, func(int) float64 { return 300e6 * (1 + 0.05*rng.NormFloat64()) }, true},
		{"rss sawing with the collector", rssBound, func(i int) float64 { return 280e6 + float64(i%6)*10e6 }, true},
		{"rss ramping until warm-up ends", rssBound, func(i int) float64 { return min(float64(i), 12) * 25e6 }, true},
		{"rss leaking 1 MB a sample", rssBound, func(i int) float64 { return 300e6 + float64(i)*1e6 }, false},
		{"rss doubling once", rssBound, func(i int) float64 { return 300e6 * (1 + float64(i/50)) }, false},
		{"goroutines steady", goroutineBound, func(i int) float64 { return 4400 + float64(rng.IntN(60)) }, true},
		{"goroutines leaking one per call", goroutineBound, func(i int) float64 { return 4400 + float64(i)*10/3 }, false},
		{"fds steady", fdBound, func(int) float64 { return 2230 + float64(rng.IntN(10)) }, true},
		{"fds leaking", fdBound, func(i int) float64 { return 2230 + float64(i) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, v := series(tt.f)
			tr := newTrend(tt.bound, at, v, 2*time.Minute, v[0])
			if err := tr.flat(); (err == nil) != tt.flat {
				t.Fatalf("flat() = %v, want flat %v (trend %+v)", err, tt.flat, tr)
			}
		})
	}
	t.Run("too few samples", func(t *testing.T) {
		at, v := series(func(int) float64 { return 1 })
		if err := newTrend(fdBound, at[:5], v[:5], 0, 1).flat(); err == nil {
			t.Fatal("5 samples judged flat")
		}
	})
}

func TestSlope(t *testing.T) {
	x := []float64{0, 1, 2, 3}
	if got := slope(x, []float64{1, 3, 5, 7}); got != 2 {
		t.Fatalf("slope of 2x+1 = %v, want 2", got)
	}
	if got := slope([]float64{1, 1}, []float64{1, 5}); got != 0 {
		t.Fatalf("slope with no spread in x = %v, want 0", got)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 4421
process_open_fds 2231
process_resident_memory_bytes 3.29842688e+08
process_cpu_seconds_total 84.02
lifeline_live_clients 200
lifeline_telemetry_rejected_total{kind="gps",reason="impossible_jump"} 3
lifeline_telemetry_rejected_total{kind="gps",reason="malformed"} 0
lifeline_telemetry_rejected_total{kind="status",reason="malformed"} 2
go_gc_duration_seconds{quantile="0.5"} 0.0001
`
	s, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s.Goroutines != 4421 || s.FDs != 2231 || s.RSS != 329842688 || s.CPU != 84.02 || s.Feeds != 200 {
		t.Fatalf("sample %+v", s)
	}
	if want := map[string]float64{"gps/impossible_jump": 3, "status/malformed": 2}; !maps.Equal(s.Rejected, want) {
		t.Fatalf("rejected %v, want %v", s.Rejected, want)
	}
	if _, err := parseMetrics(strings.NewReader("up 1\n")); err == nil {
		t.Fatal("metrics without the process gauges: no error")
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines many\n")); err == nil {
		t.Fatal("a value that is not a number: no error")
	}
}

func TestCountLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log := `time=2026-12-01T00:22:15.711Z level=WARN msg="error processing packet" component=mqtt-broker error="broken pipe"
time=2026-12-01T00:22:15.712Z level=WARN msg="error processing packet" component=mqtt-broker error="reset"
time=2026-12-01T00:22:16.000Z level=ERROR msg=boom err=x
not slog at all
`
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got := countLog(path)
	want := []string{"2 WARN error processing packet", "1 ERROR boom", "1 not slog at all"}
	var have []string
	for _, c := range got {
		have = append(have, fmt.Sprintf("%d %s", c.N, c.What))
	}
	if !slices.Equal(have, want) || !strings.Contains(got[0].Example, "broken pipe") {
		t.Fatalf("countLog = %q (first example %q), want %q", have, got[0].Example, want)
	}
}

func TestAckLogCompare(t *testing.T) {
	stop := time.Date(2026, 12, 1, 0, 10, 0, 0, time.UTC)
	l := newAckLog(&latencies{})
	fix := func(seq uint64, at time.Time) telemetry.Fix {
		return telemetry.Fix{Seq: seq, Time: at, Lat: 29.18, Lon: 104.98, HDOP: 1, Sats: 9}
	}
	early := stop.Add(-time.Minute)
	l.add("SK-0001", telemetry.KindGPS, telemetry.EncodeFixes(fix(1, early), fix(2, early.Add(time.Second))))
	l.add("SK-0001", telemetry.KindGPS, telemetry.EncodeFixes(fix(3, early.Add(2*time.Second))))
	l.add("SK-0001", telemetry.KindGPS, telemetry.EncodeFixes(fix(1, early))) // sent again after a reconnection
	l.add("SK-0002", telemetry.KindGPS, telemetry.EncodeFixes(fix(1, early)))
	l.add("SK-0002", telemetry.KindStatus, []byte(`{"status":"en_route"}`)) // not a fix
	l.add("SK-0002", telemetry.KindGPS, []byte(`not json`))
	key := func(unit string, seq uint64, at time.Time) fixKey { return fixKey{unit, seq, at.UnixMilli()} }
	stored := map[fixKey]int{
		key("SK-0001", 1, early):                     1,
		key("SK-0001", 2, early.Add(time.Second)):    2, // twice
		key("SK-0002", 9, early):                     1, // never acknowledged
		key("SK-0002", 10, stop.Add(-2*time.Second)): 1, // in flight at the stop
	}
	got := l.compare(stored, stop)
	slices.SortFunc(got.MissingFixes, func(a, b fixKey) int { return strings.Compare(a.unit, b.unit) })
	want := fixCounts{Acked: 4, Stored: 5, Missing: 2, Repeated: 1, AckedTwice: 1, Unacked: 2, UnackedAtStop: 1, Undecodable: 1,
		MissingFixes: []fixKey{key("SK-0001", 3, early.Add(2*time.Second)), key("SK-0002", 1, early)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("compare = %+v, want %+v", got, want)
	}
}
