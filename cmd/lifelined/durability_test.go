package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/dispatch/sqlite"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// process is lifelined running as a separate process, so it can be killed.
type process struct {
	bin, http, mqtt string
	args            []string
	out             io.Writer // the server's output; the test's log when nil
	cmd             *exec.Cmd
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func buildLifelined(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "lifelined")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (p *process) start(tb testing.TB) {
	tb.Helper()
	p.cmd = exec.Command(p.bin, append([]string{"--http", p.http, "--mqtt-listen", p.mqtt, "--log-level", "warn"}, p.args...)...)
	p.cmd.Env = append(os.Environ(), "LIFELINE_ADMIN_PASSWORD="+testAdminPassword)
	p.cmd.Stdout, p.cmd.Stderr = testWriter{tb}, testWriter{tb}
	if p.out != nil {
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.kill() })
	waitFor(tb, 30*time.Second, "lifelined ready", func() bool {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (p *process) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

// api is a signed-in client of a running lifelined.
type api struct {
	base, token string
}

func (p *process) api(tb testing.TB) api {
	tb.Helper()
	a := api{base: "http://" + p.http}
	var out struct{ Token string }
	if code := doJSON(tb, "", "POST", a.base+"/api/v1/sessions", map[string]string{"username": "admin", "password": testAdminPassword}, &out); code != http.StatusCreated {
		tb.Fatalf("sign in: %d", code)
	}
	a.token = out.Token
	return a
}

func (a api) do(tb testing.TB, method, path string, body, out any) int {
	tb.Helper()
	return doJSON(tb, a.token, method, a.base+path, body, out)
}

// TestKillAndRestart kills the server (SIGKILL) while terminals publish and
// dispatchers assign, restarts it, and finds every acknowledged position,
// incident and assignment, each exactly once, on both durable stores.
func TestKillAndRestart(t *testing.T) {
	bin := buildLifelined(t)
	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return []string{"--data-dir", t.TempDir()} }},
		{"postgres", func(t *testing.T) []string { return []string{"--postgres-url", pgtest.DSN(t)} }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			p := &process{bin: bin, http: freePort(t), mqtt: freePort(t), args: st.args(t)}
			p.start(t)
			killAndCheck(t, p)
		})
	}
}

func killAndCheck(t *testing.T, p *process) {
	a := p.api(t)
	units := []string{"FS-01", "FS-02", "FS-03", "FS-04", "FS-05", "FS-06"}
	passwords := map[string]string{}
	for _, u := range units {
		var c struct{ Password string }
		if code := a.do(t, "POST", "/api/v1/units/"+u+"/credentials", nil, &c); code != http.StatusCreated {
			t.Fatalf("credentials for %s: %d", u, code)
		}
		passwords[u] = c.Password
	}
	start := time.Now().UTC()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string][]uint64{}
	for i, u := range units {
		c := paho.NewClient(terminalOptions("tcp://"+p.mqtt, u, passwords[u]).SetWriteTimeout(2 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("terminal %s: %v", u, tok.Error())
		}
		wg.Go(func() {
			defer c.Disconnect(0)
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				// A few metres of jitter: every fix is judged for speed.
				f := telemetry.Fix{Seq: seq, Time: time.Now().UTC(), Lat: 29.18 + float64(i)*0.001, Lon: 104.98 + float64(seq%10)*0.00001, SpeedKmh: 10, Sats: 9, HDOP: 1}
				tok := c.Publish(telemetry.Topic(u, telemetry.KindGPS), 1, false, telemetry.EncodeFixes(f))
				if tok.WaitTimeout(3*time.Second) && tok.Error() == nil {
					mu.Lock()
					acked[u] = append(acked[u], seq)
					mu.Unlock()
				} else {
					return // the server is gone
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	// Dispatchers take calls and assign units while the fixes flow.
	type call struct{ id, external, assignment string }
	var calls []call
	wg.Go(func() {
		for n := 0; ctx.Err() == nil; n++ {
			ext := "kill-" + strconv.Itoa(n)
			var inc struct{ ID string }
			body := map[string]any{"location": map[string]float64{"lat": 29.18, "lon": 104.98}, "priority": 1, "category": "chest_pain", "external_id": ext, "source": "test"}
			if code, _ := requestJSON(a.token, "POST", a.base+"/api/v1/incidents", body, &inc); code != http.StatusCreated {
				return
			}
			c := call{id: inc.ID, external: ext}
			var asg struct{ ID string }
			code, _ := requestJSON(a.token, "POST", a.base+"/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": fmt.Sprintf("FS-%02d", n%18+1)}, &asg)
			switch code {
			case http.StatusCreated:
				c.assignment = asg.ID
			case http.StatusConflict:
			default:
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				return
			}
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	time.Sleep(2 * time.Second)
	p.kill()
	stop()
	wg.Wait()
	total := 0
	for _, s := range acked {
		total += len(s)
	}
	assigned := 0
	for _, c := range calls {
		if c.assignment != "" {
			assigned++
		}
	}
	t.Logf("before the kill: %d fixes acknowledged, %d calls taken, %d assigned", total, len(calls), assigned)
	if total < 100 || len(calls) < 5 || assigned == 0 {
		t.Fatalf("too little traffic before the kill to prove anything")
	}

	p.start(t)
	a = p.api(t)
	for _, u := range units {
		var tr struct {
			Fixes []struct{ Seq uint64 }
		}
		path := fmt.Sprintf("/api/v1/units/%s/track?from=%d&to=%d", u, start.Add(-time.Minute).UnixMilli(), time.Now().Add(time.Minute).UnixMilli())
		if code := a.do(t, "GET", path, nil, &tr); code != http.StatusOK {
			t.Fatalf("track of %s: %d", u, code)
		}
		stored := map[uint64]int{}
		for _, f := range tr.Fixes {
			stored[f.Seq]++
		}
		for _, seq := range acked[u] {
			if stored[seq] != 1 {
				t.Errorf("%s: acknowledged fix seq %d stored %d times, want once", u, seq, stored[seq])
			}
		}
		for seq, n := range stored {
			if n != 1 {
				t.Errorf("%s: fix seq %d stored %d times", u, seq, n)
			}
		}
	}
	var list struct {
		Incidents []struct {
			ID         string `json:"id"`
			ExternalID string `json:"external_id"`
		}
	}
	if code := a.do(t, "GET", "/api/v1/incidents", nil, &list); code != http.StatusOK {
		t.Fatalf("incidents: %d", code)
	}
	byExt := map[string]int{}
	for _, inc := range list.Incidents {
		byExt[inc.ExternalID]++
	}
	for _, c := range calls {
		if byExt[c.external] != 1 {
			t.Errorf("call %s (%s) stored %d times, want once", c.id, c.external, byExt[c.external])
		}
		if c.assignment == "" {
			continue
		}
		var inc struct {
			Assignments []struct{ ID string }
		}
		a.do(t, "GET", "/api/v1/incidents/"+c.id, nil, &inc)
		n := 0
		for _, as := range inc.Assignments {
			if as.ID == c.assignment {
				n++
			}
		}
		if n != 1 {
			t.Errorf("assignment %s of %s stored %d times, want once", c.assignment, c.id, n)
		}
	}
}

// TestAuditVerify runs `lifelined audit verify` on a store a server wrote,
// then edits and deletes audit rows behind the server's back (dropping
// the append-only triggers first, as someone with the database file could)
// and expects the command to name the damage.
func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.DataDir = dir })
	m.credentials(t, "FS-01")
	m.login(t, "admin", testAdminPassword)
	if code, _ := requestJSON("", "POST", m.url("/api/v1/sessions"), map[string]string{"username": "admin", "password": "not-the-password"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	verify := func() (string, error) {
		var out, errOut strings.Builder
		err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "audit log intact") {
		t.Fatalf("verify an untouched log: %v\n%s", err, out)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.File))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tamper := []struct {
		name, sql, want string
	}{
		{"edited", `DROP TRIGGER audit_no_update; UPDATE audit SET detail = '{"remote":"elsewhere"}' WHERE seq = 3`, "entry 3 was altered"},
		{"deleted", `DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2`, "deleted or inserted"},
	}
	for _, tt := range tamper {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.Exec(tt.sql); err != nil {
				t.Fatal(err)
			}
			out, err := verify()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("verify after a row was %s: err %v, want %q\n%s", tt.name, err, tt.want, out)
			}
		})
	}
}

// TestAdminResetPassword recovers a lost administrator password with the
// operator's command, on the store a server wrote.
func TestAdminResetPassword(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.DataDir = dir })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"admin", "reset-password", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("reset-password: %v\n%s", err, errOut.String())
	}
	_, pw, ok := strings.Cut(strings.TrimSpace(out.String()), "(shown once): ")
	if !ok || len(pw) < 12 {
		t.Fatalf("no new password in %q", out.String())
	}
	again := startMain(t, func(c *Config) { c.DataDir = dir; c.AdminPassword = "" })
	again.login(t, "admin", pw)
	if code, _ := requestJSON("", "POST", again.url("/api/v1/sessions"), map[string]string{"username": "admin", "password": testAdminPassword}, nil); code != http.StatusUnauthorized {
		t.Fatalf("the old password still works: %d", code)
	}
}

// TestBackup copies the embedded store of a running server and finds the
// call it had taken in the copy.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.DataDir = dir })
	var inc struct{ ID string }
	call := map[string]any{"location": map[string]float64{"lat": 29.1838, "lon": 104.9818}, "priority": 2, "category": "other"}
	if code := m.do(t, "POST", "/api/v1/incidents", call, &inc); code != http.StatusCreated {
		t.Fatalf("create incident: %d", code)
	}
	copyDir := t.TempDir()
	to := filepath.Join(copyDir, sqlite.File)
	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"backup", "--data-dir", dir, "--to", to}, &out, &errOut); err != nil {
		t.Fatalf("backup of a running server: %v\n%s", err, errOut.String())
	}
	if err := run(context.Background(), []string{"backup", "--data-dir", dir, "--to", to}, &out, &errOut); err == nil {
		t.Fatal("a backup overwrote an existing file")
	}
	db, err := sqlite.Open(context.Background(), copyDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Incident(context.Background(), inc.ID); err != nil {
		t.Fatalf("the copy lacks incident %s: %v", inc.ID, err)
	}
}
