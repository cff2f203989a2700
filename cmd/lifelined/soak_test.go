package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to count the stored fixes
	"github.com/paulmach/orb"
	"golang.org/x/sync/errgroup"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/dispatch/simarea"
	"github.com/lifeline-ems/lifeline/dispatch/sqlite"
	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/sim"
)

// The soak of issue 7: the real lifelined binary with thousands of MQTT
// terminals and hundreds of websocket consoles for minutes, its resident
// memory, goroutines and file descriptors sampled from /metrics, and at the
// end every fix a terminal got a PUBACK for looked up in the database.
// make soak runs TestSoak (docs/BENCHMARKS.md); TestSoakSmoke runs the same
// harness with tiny numbers in the default suite.

// soakConfig sizes one soak run.
type soakConfig struct {
	Duration  time.Duration // how long the load runs, ramp and warm-up included
	Warmup    time.Duration // the first part of Duration, left out of the flatness checks
	Sample    time.Duration // how often /metrics is read
	Ramp      time.Duration // terminals and consoles connect spread over this
	Terminals int           // MQTT terminals, one unit each
	Consoles  int           // websocket consoles
	Interval  time.Duration // GPS fix interval of each terminal
	CallEvery time.Duration // a dispatcher takes a call this often
	Speedup   float64       // compression of the simulated crews' scenario
	// AssertFlat makes flatness a failure, not only a report: too few
	// samples in a short run say nothing.
	AssertFlat bool
}

// soakFull is make soak's run: 2,000 terminals reporting every 5 s and
// 200 consoles, a call every 3 s, for LIFELINE_SOAK_DURATION (10m).
func soakFull(d time.Duration) soakConfig {
	return soakConfig{
		Duration: d, Warmup: max(d/5, 70*time.Second), Sample: 10 * time.Second, Ramp: 40 * time.Second,
		Terminals: 2000, Consoles: 200, Interval: 5 * time.Second, CallEvery: 3 * time.Second,
		Speedup: 20, AssertFlat: true,
	}
}

// Live feeds the server allows per session and per user (web's defaults).
const (
	soakFeedsPerSession = 4
	soakFeedsPerUser    = 16
)

// soakJurisdiction is the demo county the soak's units serve.
const soakJurisdiction = "510322"

// TestSoak is make soak. It runs only when LIFELINE_SOAK_DURATION is set;
// LIFELINE_SOAK_TERMINALS, LIFELINE_SOAK_CONSOLES and LIFELINE_SOAK_STORES
// (postgres, sqlite, or both, comma separated) change the run, and
// LIFELINE_SOAK_BIN runs a lifelined built otherwise (say, to profile it).
func TestSoak(t *testing.T) {
	env := os.Getenv("LIFELINE_SOAK_DURATION")
	if env == "" {
		t.Skip("make soak runs it (LIFELINE_SOAK_DURATION=10m)")
	}
	d, err := time.ParseDuration(env)
	if err != nil || d < time.Minute {
		t.Fatalf("LIFELINE_SOAK_DURATION=%q: want a duration of a minute or more", env)
	}
	cfg := soakFull(d)
	for name, n := range map[string]*int{"LIFELINE_SOAK_TERMINALS": &cfg.Terminals, "LIFELINE_SOAK_CONSOLES": &cfg.Consoles} {
		if v := os.Getenv(name); v != "" {
			if *n, err = strconv.Atoi(v); err != nil || *n < 1 {
				t.Fatalf("%s=%q: want a positive number", name, v)
			}
		}
	}
	stores := strings.Split(cmpOr(os.Getenv("LIFELINE_SOAK_STORES"), "postgres,sqlite"), ",")
	bin := os.Getenv("LIFELINE_SOAK_BIN") // a binary built otherwise, e.g. to profile it
	if bin == "" {
		bin = buildLifelined(t)
	}
	for _, store := range stores {
		t.Run(strings.TrimSpace(store), func(t *testing.T) { runSoak(t, bin, strings.TrimSpace(store), cfg) })
	}
}

// TestSoakSmoke runs the soak harness end to end with tiny numbers, so
// that make soak does not rot between its runs: it checks that every
// acknowledged fix is stored once, and reports (without judging) the
// trends that a run this short cannot show.
func TestSoakSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server for about 15 s")
	}
	cfg := soakConfig{
		Duration: 8 * time.Second, Warmup: 3 * time.Second, Sample: time.Second, Ramp: 2 * time.Second,
		Terminals: 12, Consoles: 20, Interval: time.Second, CallEvery: time.Second, Speedup: 200,
	}
	runSoak(t, buildLifelined(t), "sqlite", cfg)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// runSoak runs one soak against a fresh server on store and fails t on a
// lost or repeated acknowledged fix, or (cfg.AssertFlat) on a gauge that
// is not flat after warm-up.
func runSoak(t *testing.T, bin, store string, cfg soakConfig) {
	dir := t.TempDir()
	area := soakArea(t, cfg.Terminals)
	areaFile := filepath.Join(dir, "area.geojson")
	b, err := geojson.Encode(area)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(areaFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var dsn string
	args := []string{"--area", areaFile}
	switch store {
	case "postgres":
		dsn = pgtest.DSN(t)
		args = append(args, "--postgres-url", dsn)
	case "sqlite":
		args = append(args, "--data-dir", filepath.Join(dir, "data"))
	default:
		t.Fatalf("store %q: want postgres or sqlite", store)
	}
	logFile, err := os.Create(filepath.Join(dir, "lifelined.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	p := &process{bin: bin, http: freePort(t), mqtt: freePort(t), args: args, out: logFile}
	p.start(t)
	h := &soakHTTP{base: "http://" + p.http, c: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	defer h.c.CloseIdleConnections()
	admin := h.signIn(t, "admin", testAdminPassword)

	rep := &soakReport{Store: store, Config: cfg, LoadStart: loadAverage()}
	start := h.sample(t, 0)
	rep.Start = start

	passwords := h.provision(t, admin, area.Units)
	tokens, caller := h.dispatchers(t, admin, cfg.Consoles)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	began := time.Now()
	samples := make(chan []soakSample, 1)
	go func() { samples <- h.sampleEvery(ctx, began, cfg.Sample) }()

	// Consoles: each reads everything until the end, and reconnects when
	// the server drops it, as a console does.
	var cons consoleStats
	var consoles sync.WaitGroup
	for i, token := range tokens {
		delay := cfg.Ramp * time.Duration(i) / time.Duration(len(tokens))
		consoles.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			runConsole(ctx, "ws://"+p.http+"/api/v1/live", token, &cons)
		})
	}

	// Terminals: the simulated fleet, in chunks that connect over the ramp.
	w, err := simarea.World(area, 0)
	if err != nil {
		t.Fatal(err)
	}
	acks := newAckLog(&rep.PubAck)
	warnings := newWarnCounter()
	const chunk = 100
	var fleets []*sim.Fleet
	fleetCtx, stopFleets := context.WithCancel(ctx)
	defer stopFleets()
	g, gctx := errgroup.WithContext(fleetCtx)
	chunks := (len(w.Units) + chunk - 1) / chunk
	for i := 0; i < len(w.Units); i += chunk {
		part := w
		part.Units = w.Units[i:min(i+chunk, len(w.Units))]
		f := sim.New(part, sim.Config{
			URL: "tcp://" + p.mqtt, Interval: cfg.Interval, Speedup: cfg.Speedup, MaxSpeedKmh: 120,
			Wander: true, Seed: uint64(i + 1), Acked: acks.add,
			Credentials: func(unit string) (string, string) { return unit, passwords[unit] },
		}, slog.New(warnings))
		fleets = append(fleets, f)
		delay := cfg.Ramp * time.Duration(i/chunk) / time.Duration(chunks)
		g.Go(func() error {
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(delay):
			}
			return f.Run(gctx)
		})
	}

	// A dispatcher takes calls and assigns the first recommended unit;
	// the terminals ack and press their way through the call.
	var calls callStats
	var dispatcher sync.WaitGroup
	dispatcher.Go(func() { h.takeCalls(ctx, caller, area, cfg.CallEvery, &calls, &rep.Create, &rep.Assign) })

	select {
	case <-time.After(cfg.Duration):
	case <-gctx.Done(): // a fleet failed
	}
	end := h.sample(t, time.Since(began))
	stopped := time.Now()
	stopFleets()
	if err := g.Wait(); err != nil {
		t.Errorf("terminals: %v", err)
	}
	stop()
	dispatcher.Wait()
	consoles.Wait()
	rep.Samples = append(<-samples, end)
	rep.LoadEnd = loadAverage()
	h.c.CloseIdleConnections()
	rep.After = h.settle(t, start)
	for _, f := range fleets {
		s := f.Stats()
		rep.Fleet.Fixes += s.Fixes
		rep.Fleet.Messages += s.Messages
		rep.Fleet.Commands += s.Commands
		rep.Fleet.Acks += s.Acks
		rep.Fleet.Errors += s.Errors
	}
	rep.Calls, rep.Consoles, rep.Terminal = calls.snapshot(), cons.snapshot(), warnings.top()

	// The record, once the server has stopped: every acknowledged fix
	// exactly once.
	if err := p.terminate(30 * time.Second); err != nil {
		t.Errorf("stop lifelined: %v", err)
	}
	if fi, err := logFile.Stat(); err == nil {
		rep.LogBytes = fi.Size()
	}
	rep.Log = countLog(logFile.Name())
	stored := storedFixes(t, store, dsn, filepath.Join(dir, "data"))
	rep.Fixes = acks.compare(stored, stopped)
	rep.Incidents = incidentsByStatus(t, store, dsn, filepath.Join(dir, "data"))
	rep.log(t)

	if f := rep.Fixes; f.Acked == 0 || f.Missing > 0 || f.Repeated > 0 || f.Undecodable > 0 {
		t.Errorf("acknowledged fixes: %d acked, %d missing from the record, %d stored more than once, %d undecodable; rejected by the server: %v",
			f.Acked, f.Missing, f.Repeated, f.Undecodable, end.Rejected)
	}
	if rep.Calls.Taken == 0 || rep.Calls.Assigned == 0 {
		t.Errorf("calls: %+v: the lifecycle did not run", rep.Calls)
	}
	if rep.Consoles.Messages == 0 {
		t.Errorf("consoles read nothing: %+v", rep.Consoles)
	}
	for _, tr := range rep.trends() {
		if err := tr.flat(); err != nil {
			if cfg.AssertFlat {
				t.Error(err)
			} else {
				t.Logf("not judged (short run): %v", err)
			}
		}
	}
	if cfg.AssertFlat {
		if err := rep.settled(); err != nil {
			t.Error(err)
		}
	}
}

// soakArea is the demo area with its units replaced by n units of the
// demo county, spread over the county's stations.
func soakArea(tb testing.TB, n int) *dispatch.Area {
	tb.Helper()
	a := geojson.Demo()
	var stations []dispatch.Station
	for _, s := range a.Stations {
		if s.Jurisdiction == soakJurisdiction {
			stations = append(stations, s)
		}
	}
	if len(stations) == 0 {
		tb.Fatalf("the demo area has no station in %s", soakJurisdiction)
	}
	caps := [][]string{{"als"}, {"bls"}, {"als", "neonatal"}}
	a.Name = fmt.Sprintf("Soak: %d units in the demo county", n)
	a.Units = make([]dispatch.Unit, n)
	for i := range a.Units {
		a.Units[i] = dispatch.Unit{
			ID: fmt.Sprintf("SK-%04d", i+1), Callsign: fmt.Sprintf("富顺120-S%04d", i+1),
			Station: stations[i%len(stations)].ID, Jurisdiction: soakJurisdiction,
			Capabilities: caps[i%len(caps)], Illustrative: true,
		}
	}
	return a
}

// soakHTTP is the harness's client of the server's API.
type soakHTTP struct {
	base string
	c    *http.Client
}

// call sends a JSON request to path and decodes the reply into out.
func (h *soakHTTP) call(token, method, path string, in, out any) (int, error) {
	return requestJSONWith(h.c, token, method, h.base+path, in, out)
}

func (h *soakHTTP) must(tb testing.TB, token, method, path string, in, out any, want int) {
	tb.Helper()
	code, err := h.call(token, method, path, in, out)
	if err != nil || code != want {
		tb.Fatalf("%s %s: %d %v, want %d", method, path, code, err, want)
	}
}

func (h *soakHTTP) signIn(tb testing.TB, user, password string) string {
	tb.Helper()
	var s struct{ Token string }
	h.must(tb, "", "POST", "/api/v1/sessions", map[string]string{"username": user, "password": password}, &s, http.StatusCreated)
	return s.Token
}

// provision issues every unit's broker credentials through the API, a
// few at a time, as an operator's script would.
func (h *soakHTTP) provision(tb testing.TB, admin string, units []dispatch.Unit) map[string]string {
	tb.Helper()
	out := make(map[string]string, len(units))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(8)
	for _, u := range units {
		g.Go(func() error {
			var c struct{ Password string }
			code, err := h.call(admin, "POST", "/api/v1/units/"+u.ID+"/credentials", nil, &c)
			if err != nil || code != http.StatusCreated || c.Password == "" {
				return fmt.Errorf("credentials for %s: %d %v", u.ID, code, err)
			}
			mu.Lock()
			out[u.ID] = c.Password
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// dispatchers creates enough dispatchers of the demo county and signs
// them in enough times that consoles feeds fit the server's limits per
// session and per user. It returns one token per console, and the token
// of a further session that takes the calls.
func (h *soakHTTP) dispatchers(tb testing.TB, admin string, consoles int) (tokens []string, caller string) {
	tb.Helper()
	users := (consoles + soakFeedsPerUser - 1) / soakFeedsPerUser
	password := "soak-dispatcher-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sessions := map[[2]int]string{}
	for u := range users {
		name := fmt.Sprintf("soak-%03d", u+1)
		body := map[string]any{"username": name, "password": password, "role": dispatch.RoleDispatcher, "jurisdiction": soakJurisdiction}
		h.must(tb, admin, "POST", "/api/v1/users", body, nil, http.StatusCreated)
	}
	for i := range consoles {
		u, s := i/soakFeedsPerUser, i%soakFeedsPerUser/soakFeedsPerSession
		if sessions[[2]int{u, s}] == "" {
			sessions[[2]int{u, s}] = h.signIn(tb, fmt.Sprintf("soak-%03d", u+1), password)
		}
		tokens = append(tokens, sessions[[2]int{u, s}])
	}
	return tokens, h.signIn(tb, "soak-001", password)
}

// callStats counts what the dispatcher did.
type callStats struct {
	taken, assigned, conflicts, noUnit, failed atomic.Int64
}

type callCounts struct{ Taken, Assigned, Conflicts, NoUnit, Failed int64 }

func (c *callStats) snapshot() callCounts {
	return callCounts{c.taken.Load(), c.assigned.Load(), c.conflicts.Load(), c.noUnit.Load(), c.failed.Load()}
}

// takeCalls creates a call every every at a random place of the demo
// county and assigns the first recommended unit (the next on a conflict).
func (h *soakHTTP) takeCalls(ctx context.Context, token string, a *dispatch.Area, every time.Duration, st *callStats, create, assign *latencies) {
	rng := rand.New(rand.NewPCG(7, 11))
	var stations []orb.Point
	for _, s := range a.Stations {
		if s.Jurisdiction == soakJurisdiction {
			stations = append(stations, s.Location)
		}
	}
	categories := []string{"chest_pain", "stroke", "trauma", "maternal", "other"}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var p orb.Point
		for {
			s := stations[rng.IntN(len(stations))]
			p = orb.Point{s[0] + (rng.Float64()-0.5)*0.05, s[1] + (rng.Float64()-0.5)*0.05}
			if j, _, ok := a.Locate(p); ok && j.ID == soakJurisdiction {
				break
			}
		}
		call := map[string]any{
			"location": map[string]float64{"lat": p.Lat(), "lon": p.Lon()}, "priority": 1 + rng.IntN(3),
			"category": categories[rng.IntN(len(categories))], "source": "soak", "external_id": "soak-" + strconv.Itoa(n),
		}
		var inc struct {
			ID              string                   `json:"id"`
			Recommendations dispatch.Recommendations `json:"recommendations"`
		}
		// A call once taken is seen through, even when the soak ends.
		t0 := time.Now()
		code, err := h.call(token, "POST", "/api/v1/incidents", call, &inc)
		create.add(time.Since(t0))
		if err != nil || code != http.StatusCreated {
			st.failed.Add(1)
			continue
		}
		st.taken.Add(1)
		if len(inc.Recommendations.Candidates) == 0 {
			st.noUnit.Add(1)
		}
		for _, c := range inc.Recommendations.Candidates[:min(3, len(inc.Recommendations.Candidates))] {
			t0 := time.Now()
			code, err := h.call(token, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": c.Unit}, nil)
			assign.add(time.Since(t0))
			if err == nil && code == http.StatusCreated {
				st.assigned.Add(1)
				break
			}
			if err == nil && code == http.StatusConflict {
				st.conflicts.Add(1)
				continue
			}
			st.failed.Add(1)
			break
		}
	}
}

// consoleStats counts what the consoles read.
type consoleStats struct {
	messages, bytes, snapshots, units, dropped, refused, dialFailed, reconnects atomic.Int64
}

type consoleCounts struct {
	Messages, Bytes, Snapshots, Units, Dropped, Refused, DialFailed, Reconnects int64
}

func (c *consoleStats) snapshot() consoleCounts {
	return consoleCounts{c.messages.Load(), c.bytes.Load(), c.snapshots.Load(), c.units.Load(),
		c.dropped.Load(), c.refused.Load(), c.dialFailed.Load(), c.reconnects.Load()}
}

// runConsole reads the live feed with token until ctx is done, counting
// messages by their type without decoding them, and reconnects when the
// server closes the feed.
func runConsole(ctx context.Context, url, token string, st *consoleStats) {
	header := http.Header{"Authorization": {"Bearer " + token}}
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			st.reconnects.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, header)
		if err != nil {
			if ctx.Err() == nil {
				st.dialFailed.Add(1)
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		readFeed(conn, st)
		stop()
		conn.Close()
	}
}

// readFeed reads one feed until it ends.
func readFeed(conn *websocket.Conn, st *consoleStats) {
	var head [24]byte
	for {
		_, r, err := conn.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				switch ce.Code {
				case websocket.CloseTryAgainLater:
					st.dropped.Add(1)
				case closeTooMany:
					st.refused.Add(1)
				}
			}
			return
		}
		n, _ := io.ReadFull(r, head[:])
		rest, _ := io.Copy(io.Discard, r)
		st.messages.Add(1)
		st.bytes.Add(int64(n) + rest)
		switch {
		case bytes.HasPrefix(head[:n], []byte(`{"type":"unit"`)):
			st.units.Add(1)
		case bytes.HasPrefix(head[:n], []byte(`{"type":"snapshot"`)):
			st.snapshots.Add(1)
		}
	}
}

// closeTooMany is the close code of a feed over the per-session or
// per-user limit (web).
const closeTooMany = 4429

// ackLog is the terminals' own log of the fixes the broker acknowledged.
type ackLog struct {
	mu          sync.Mutex
	fixes       map[fixKey]int
	undecodable int
	latency     *latencies // from the newest fix of a message to its PUBACK
}

// fixKey is one fix in the record: a unit's (fix time, seq).
type fixKey struct {
	unit string
	seq  uint64
	ms   int64 // fix time, Unix milliseconds (what the wire carries)
}

func newAckLog(l *latencies) *ackLog { return &ackLog{fixes: map[fixKey]int{}, latency: l} }

// add is the fleet's sim.Config.Acked.
func (l *ackLog) add(unit string, k telemetry.Kind, payload []byte) {
	if k != telemetry.KindGPS {
		return
	}
	fixes, err := telemetry.DecodeFixes(unit, payload, time.Now())
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.undecodable++
		return
	}
	newest := fixes[0].Time
	for _, f := range fixes {
		l.fixes[fixKey{unit, f.Seq, f.Time.UnixMilli()}]++
		newest = later(newest, f.Time)
	}
	l.latency.add(time.Since(newest))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fixCounts compares the acknowledged fixes with the record.
type fixCounts struct {
	Acked    int // acknowledged fixes, each counted once
	Stored   int // rows in positions
	Missing  int // acknowledged, not stored
	Repeated int // acknowledged, stored more than once
	// AckedTwice were acknowledged in two messages: a terminal that loses
	// its connection sends a fix in flight again, and paho resends it too;
	// the server stores it once and refuses the other as a duplicate seq.
	AckedTwice int
	Unacked    int // stored, never acknowledged (a PUBACK that came too late)
	// UnackedAtStop are the Unacked taken within atStop of the
	// terminals' stop: in flight when they disconnected.
	UnackedAtStop int
	MissingFixes  []fixKey // the first few Missing, for the report
	Undecodable   int      // acknowledged gps payloads the harness could not read
}

// atStop is how long before the terminals stop a fix counts as in flight
// at the stop: the sim's publish timeout.
const atStop = 10 * time.Second

// compare counts the acknowledged fixes against the record; stopped is
// when the terminals stopped.
func (l *ackLog) compare(stored map[fixKey]int, stopped time.Time) fixCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := fixCounts{Undecodable: l.undecodable}
	for k, n := range l.fixes {
		c.Acked++
		if n > 1 {
			c.AckedTwice++
		}
		switch s := stored[k]; {
		case s == 0:
			c.Missing++
			if len(c.MissingFixes) < 10 {
				c.MissingFixes = append(c.MissingFixes, k)
			}
		case s > 1:
			c.Repeated++
		}
	}
	for k, n := range stored {
		c.Stored += n
		if l.fixes[k] == 0 {
			c.Unacked++
			if k.ms >= stopped.Add(-atStop).UnixMilli() {
				c.UnackedAtStop++
			}
		}
	}
	return c
}

// soakRecord opens the stopped server's record for counting.
func soakRecord(tb testing.TB, store, dsn, dataDir string) *sql.DB {
	tb.Helper()
	driver, source := "pgx", dsn
	if store == "sqlite" {
		driver, source = "sqlite", "file:"+filepath.Join(dataDir, sqlite.File)+"?mode=ro"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// storedFixes counts the record's positions by (unit, fix time, seq).
func storedFixes(tb testing.TB, store, dsn, dataDir string) map[fixKey]int {
	tb.Helper()
	q := `SELECT unit, seq, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions`
	if store == "sqlite" {
		q = `SELECT unit, seq, fix_time / 1000 FROM positions` // microseconds
	}
	rows, err := soakRecord(tb, store, dsn, dataDir).Query(q)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[fixKey]int{}
	for rows.Next() {
		var k fixKey
		var seq int64
		if err := rows.Scan(&k.unit, &seq, &k.ms); err != nil {
			tb.Fatal(err)
		}
		k.seq = uint64(seq)
		out[k]++
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// incidentsByStatus counts the record's calls by status.
func incidentsByStatus(tb testing.TB, store, dsn, dataDir string) map[string]int {
	tb.Helper()
	rows, err := soakRecord(tb, store, dsn, dataDir).Query(`SELECT status, count(*) FROM incidents GROUP BY status`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			tb.Fatal(err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// terminate stops the server as an operator does (SIGTERM) and waits for
// it to exit.
func (p *process) terminate(wait time.Duration) error {
	if p.cmd == nil {
		return errors.New("not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		p.cmd = nil
		return err
	case <-time.After(wait):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-done
		p.cmd = nil
		return fmt.Errorf("still running %s after SIGTERM: killed", wait)
	}
}

// loadAverage returns the machine's 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
