package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
)

// buildLifelined builds cmd/lifelined from the module the harness runs in
// into dir, unless path names a binary already built.
func buildLifelined(ctx context.Context, path, dir string) (string, error) {
	if path != "" {
		return findBinary(path)
	}
	bin := filepath.Join(dir, "lifelined")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/lifeline-ems/lifeline/cmd/lifelined")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/lifelined: %v\n%s", err, out)
	}
	return bin, nil
}

// lifeline is a lifelined the harness started and signed in to as admin.
type lifeline struct {
	p        *proc
	base     string // http://host:port
	mqttURL  string // where its terminals connect: the embedded broker, or the external one
	token    string
	password string
	c        *http.Client
}

// lifelineOpts says how to start lifelined.
type lifelineOpts struct {
	bin, area, dataDir string
	postgresURL        string // empty: the embedded SQLite store under dataDir
	externalMQTT       string // non-empty: ingest from this broker, no embedded broker
	log                io.Writer
}

var lifelineCount atomic.Int64

func startLifeline(ctx context.Context, o lifelineOpts) (*lifeline, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	l := &lifeline{base: "http://" + httpAddr, password: randomHex(12), c: httpClient(64)}
	args := []string{"--http", httpAddr, "--area", o.area, "--data-dir", o.dataDir, "--log-level", "warn", "--mqtt-unit-rate", "0"}
	if o.externalMQTT != "" {
		id := fmt.Sprintf("benchpeers-%d-%d", os.Getpid(), lifelineCount.Add(1))
		args = append(args, "--mqtt-url", o.externalMQTT, "--mqtt-listen", "", "--mqtt-client-id", id)
		l.mqttURL = o.externalMQTT
	} else {
		mqttAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "--mqtt-listen", mqttAddr)
		l.mqttURL = "tcp://" + mqttAddr
	}
	if o.postgresURL != "" {
		args = append(args, "--postgres-url", o.postgresURL)
	}
	p, err := start("lifelined", o.bin, args, []string{"LIFELINE_ADMIN_PASSWORD=" + l.password}, o.log)
	if err != nil {
		return nil, err
	}
	l.p = p
	if err := waitHTTP(ctx, p, l.base+"/readyz", 10*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	var out struct{ Token string }
	if err := l.call(ctx, "POST", "/api/v1/sessions", map[string]string{"username": "admin", "password": l.password}, http.StatusCreated, &out); err != nil {
		p.stop()
		return nil, fmt.Errorf("sign in: %w", err)
	}
	l.token = out.Token
	return l, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// call makes one API call as admin and decodes the answer into out.
func (l *lifeline) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %.300s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// credentials issues the broker passwords of units' terminals, with a
// few calls at a time.
func (l *lifeline) credentials(ctx context.Context, units []string) (map[string]string, error) {
	out := make(map[string]string, len(units))
	var mu sync.Mutex
	err := parallel(ctx, 8, len(units), func(i int) error {
		var c struct{ Username, Password string }
		if err := l.call(ctx, "POST", "/api/v1/units/"+units[i]+"/credentials", nil, http.StatusCreated, &c); err != nil {
			return err
		}
		mu.Lock()
		out[units[i]] = c.Password
		mu.Unlock()
		return nil
	})
	return out, err
}

// createIncidents takes a call at each point and returns the incidents'
// ids, in the order of the points.
func (l *lifeline) createIncidents(ctx context.Context, points []orb.Point) ([]string, error) {
	ids := make([]string, len(points))
	run := randomHex(4)
	err := parallel(ctx, 8, len(points), func(i int) error {
		body := map[string]any{
			"location": map[string]float64{"lat": points[i][1], "lon": points[i][0]},
			"priority": 2, "category": "other", "address": "benchpeers call point",
			"source": "benchpeers", "external_id": fmt.Sprintf("%s-%d", run, i),
		}
		var out struct{ ID string }
		if err := l.call(ctx, "POST", "/api/v1/incidents", body, http.StatusCreated, &out); err != nil {
			return err
		}
		ids[i] = out.ID
		return nil
	})
	return ids, err
}

// nearest returns the unit of the incident's recommendation nearest in
// straight line, the question the peers answer.
func (l *lifeline) nearest(ctx context.Context, incident string) (string, error) {
	var recs struct {
		Candidates []struct {
			Unit      string  `json:"unit"`
			DistanceM float64 `json:"distance_m"`
		} `json:"candidates"`
	}
	if err := l.call(ctx, "GET", "/api/v1/incidents/"+incident+"/recommendations", nil, http.StatusOK, &recs); err != nil {
		return "", err
	}
	best, d := "", 0.0
	for _, c := range recs.Candidates {
		if best == "" || c.DistanceM < d || (c.DistanceM == d && c.Unit < best) {
			best, d = c.Unit, c.DistanceM
		}
	}
	return best, nil
}

// metric returns the sum of the samples of a Prometheus metric whose
// label set contains labels (e.g. `kind="gps"`), from /metrics.
func (l *lifeline) metric(ctx context.Context, name, labels string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", l.base+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := l.c.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if labels != "" && !strings.Contains(rest, labels) {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found, s.Err()
}

// gpsMessages is how many gps messages lifelined has handled, good or bad.
func (l *lifeline) gpsMessages(ctx context.Context) (float64, error) {
	const name = "lifeline_telemetry_messages_total"
	v, ok, err := l.metric(ctx, name, `kind="gps"`)
	if err == nil && !ok {
		err = fmt.Errorf("lifelined's /metrics has no %s{kind=\"gps\"}: the harness needs a count of handled gps messages", name)
	}
	return v, err
}

// waitIngested waits until lifelined has handled want gps messages.
func (l *lifeline) waitIngested(ctx context.Context, want float64, timeout time.Duration) error {
	var last float64
	var lastErr error
	err := waitUntil(ctx, l.p, timeout, fmt.Sprintf("%.0f gps messages handled", want), func() bool {
		last, lastErr = l.gpsMessages(ctx)
		return lastErr != nil || last >= want
	})
	if lastErr != nil {
		return lastErr
	}
	if err != nil {
		return fmt.Errorf("%w (handled %.0f)", err, last)
	}
	return nil
}

// rejected is how many telemetry messages and fixes lifelined dropped.
func (l *lifeline) rejected(ctx context.Context) float64 {
	v, _, _ := l.metric(ctx, "lifeline_telemetry_rejected_total", "")
	return v
}

// parallel runs fn for 0..n-1 on workers goroutines and returns the first
// error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

// postgresDatabase creates a fresh database on the server of admin (a
// PostgreSQL URL) and returns its URL and a function that drops it.
func postgresDatabase(ctx context.Context, admin string) (string, func(), error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.Background())
	name := "benchpeers_" + randomHex(6)
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
	if u, err := url.Parse(admin); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String(), drop, nil
	}
	return strings.TrimSpace(admin) + " dbname=" + name, drop, nil // a later key wins
}
