package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry/sim"
)

// TestProvisionAgainstLifelined runs fleetsim out of the box against a real
// lifelined (built from this repository and run as a process): it signs in,
// issues its units' credentials and drives them through the secured
// broker, and the units show up on the server.
func TestProvisionAgainstLifelined(t *testing.T) {
	const adminPassword = "fleetsim-test-password"
	bin := filepath.Join(t.TempDir(), "lifelined")
	if out, err := exec.Command("go", "build", "-o", bin, "../lifelined").CombinedOutput(); err != nil {
		t.Fatalf("build lifelined: %v\n%s", err, out)
	}
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	httpAddr, mqttAddr := free(), free()
	srv := exec.Command(bin, "--http", httpAddr, "--mqtt-listen", mqttAddr, "--data-dir", t.TempDir(), "--log-level", "warn")
	srv.Env = append(os.Environ(), "LIFELINE_ADMIN_PASSWORD="+adminPassword)
	var logs strings.Builder
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	base := "http://" + httpAddr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lifelined not ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Setenv("LIFELINE_ADMIN_PASSWORD", adminPassword)
	var out, errOut strings.Builder
	args := []string{"--mqtt-url", "tcp://" + mqttAddr, "--provision", base, "--units", "3", "--interval", "100ms", "--duration", "3s", "--seed", "1"}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("fleetsim: %v\n%s", err, errOut.String())
	}
	if strings.Contains(errOut.String(), "not Authorized") {
		t.Fatalf("terminals were refused:\n%s", errOut.String())
	}

	// The server saw the three units move.
	token := signIn(t, base, adminPassword)
	req, _ := http.NewRequest("GET", base+"/api/v1/units", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Units []struct {
			ID       string
			Position *struct{ Seq uint64 }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, u := range body.Units {
		if u.Position != nil && u.Position.Seq > 1 {
			moved++
		}
	}
	if moved != 3 {
		t.Fatalf("%d units reported through the secured broker, want 3\nfleetsim: %s\nlifelined: %s", moved, errOut.String(), logs.String())
	}
}

func signIn(t *testing.T, base, password string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/sessions", "application/json", strings.NewReader(`{"username":"admin","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.Token == "" {
		t.Fatalf("sign in: %d %v", resp.StatusCode, err)
	}
	return s.Token
}

func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	w := worldOfIDs("A-1", "A-2")
	good := filepath.Join(dir, "good.json")
	missing := filepath.Join(dir, "missing.json")
	bad := filepath.Join(dir, "bad.json")
	for f, body := range map[string]string{good: `{"A-1":"one","A-2":"two"}`, missing: `{"A-1":"one"}`, bad: `["A-1"]`} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	creds, err := credentials(context.Background(), good, "", "admin", w)
	if err != nil {
		t.Fatal(err)
	}
	if u, p := creds("A-2"); u != "A-2" || p != "two" {
		t.Fatalf("credentials(A-2) = %s %s", u, p)
	}
	for _, f := range []string{missing, bad, filepath.Join(dir, "none.json")} {
		if _, err := credentials(context.Background(), f, "", "admin", w); err == nil {
			t.Errorf("credentials from %s: no error", filepath.Base(f))
		}
	}
	if _, err := credentials(context.Background(), good, "http://x", "admin", w); err == nil {
		t.Error("--credentials with --provision: no error")
	}
}

func worldOfIDs(ids ...string) sim.World {
	var w sim.World
	for _, id := range ids {
		w.Units = append(w.Units, sim.UnitSpec{ID: id})
	}
	return w
}
