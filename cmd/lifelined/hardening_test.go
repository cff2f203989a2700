package main

import (
	"bytes"
	"errors"
	"fmt"
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
	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// The tests of issue 7 ("what an adversarial test of the running server
// found"), ingest side, each through the real server.

// TestNULNeverReachesTheRecord: a NUL, which PostgreSQL cannot store in
// text, is a 400 at the HTTP API and, in a terminal's report, either
// dropped from free text (an ack's reason) or a counted malformed report;
// the terminal's message is acknowledged either way and what it sends
// next arrives.
func TestNULNeverReachesTheRecord(t *testing.T) {
	m := startMain(t, func(c *Config) { c.PostgresURL = pgtest.DSN(t) })
	unit := m.Area.Units[0].ID
	term := newTerminal(t, m, unit)
	seat := orb.Point{104.9818, 29.1838}
	term.fix(t, seat)

	call := func(address, externalID, source string) map[string]any {
		return map[string]any{"location": map[string]float64{"lat": seat.Lat(), "lon": seat.Lon()}, "priority": 2,
			"category": "other", "address": address, "external_id": externalID, "source": source}
	}
	for _, tt := range []struct {
		name, path string
		body       any
		token      string
	}{
		{"address", "/api/v1/incidents", call("Main St\x00", "", ""), m.token},
		{"external id", "/api/v1/incidents", call("Main St", "x\x00", "cad"), m.token},
		{"source", "/api/v1/incidents", call("Main St", "x", "cad\x00"), m.token},
		{"sign-in username", "/api/v1/sessions", map[string]string{"username": "admin\x00", "password": "x"}, ""},
	} {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if code := doJSON(t, tt.token, "POST", m.url(tt.path), tt.body, &e); code != http.StatusBadRequest || e.Error.Code != "invalid" {
			t.Errorf("NUL in %s: %d %s, want 400 invalid", tt.name, code, e.Error.Code)
		}
	}

	var inc struct{ ID string }
	if code := m.do(t, "POST", "/api/v1/incidents", call("Main St", "", ""), &inc); code != http.StatusCreated {
		t.Fatalf("create incident: %d", code)
	}
	var a dispatch.Assignment
	if code := m.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": unit}, &a); code != http.StatusCreated {
		t.Fatalf("assign: %d", code)
	}
	select {
	case <-term.cmds:
	case <-time.After(5 * time.Second):
		t.Fatal("no assign command")
	}
	// Firmware that ends its strings with a NUL: the decline is taken, the
	// NUL is not. (It used to fail the write, go unacknowledged and hold
	// every later report of the unit behind its retransmission.)
	term.publish(t, telemetry.KindAck, telemetry.EncodeAck(telemetry.Ack{Assignment: a.ID, Reason: "vehicle fault\x00"}), false)
	term.publish(t, telemetry.KindStatus, []byte(`{"status":"available","incident":"`+inc.ID+`\u0000"}`), false)
	next := orb.Point{seat[0] + 0.0005, seat[1]}
	term.fix(t, next)
	waitFor(t, 2*time.Second, "the fix after the NULs", func() bool {
		p := getUnit(t, m, unit).Position
		return p != nil && p.Seq == term.seq
	})
	var view struct {
		Assignments []dispatch.Assignment `json:"assignments"`
	}
	if code := m.do(t, "GET", "/api/v1/incidents/"+inc.ID, nil, &view); code != http.StatusOK || len(view.Assignments) != 1 {
		t.Fatalf("incident: %d %+v", code, view)
	}
	if got := view.Assignments[0]; got.Status != dispatch.AssignDeclined || got.Reason != "vehicle fault" {
		t.Fatalf("assignment %s %q, want declined %q", got.Status, got.Reason, "vehicle fault")
	}
	metrics := get(t, m.url("/metrics"))
	if !strings.Contains(metrics, `lifeline_telemetry_rejected_total{kind="status",reason="malformed"} 1`) {
		t.Errorf("the status with a NUL in its incident is not counted as malformed:\n%s", grepLines(metrics, "rejected_total"))
	}
}

// carries reports whether log holds marker as text or as the bytes a
// logged []byte shows ("[80 65 89 ...").
func carries(log, marker string) bool {
	return strings.Contains(log, marker) || strings.Contains(log, strings.Trim(fmt.Sprint([]byte(marker)), "[]"))
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// fixAt publishes a fix at p whose time, by the terminal's clock, is ts.
func (t *terminal) fixAt(tb testing.TB, p orb.Point, ts time.Time, hdop float64) {
	tb.Helper()
	t.seq++
	t.publish(tb, telemetry.KindGPS, telemetry.EncodeFixes(telemetry.Fix{
		Seq: t.seq, Time: ts.UTC(), Lat: p.Lat(), Lon: p.Lon(), SpeedKmh: 30, Heading: 90, HDOP: hdop, Sats: 11,
	}), false)
}

// TestTerminalClocks: freshness is when the server received a fix, a
// steady clock offset is learnt and corrected, and the console is told.
// A terminal 5 minutes slow used to be shown stale and never recommended
// even 14 m from a call; one 35 s fast had every fix dropped.
func TestTerminalClocks(t *testing.T) {
	m := startMain(t, nil)
	seat := orb.Point{104.9818, 29.1838}
	slow, fast := m.Area.Units[0].ID, m.Area.Units[1].ID

	st := newTerminal(t, m, slow)
	st.fixAt(t, seat, time.Now().Add(-5*time.Minute), 0.9)
	waitFor(t, 2*time.Second, "the slow terminal's fix", func() bool { return getUnit(t, m, slow).Position != nil })
	if u := getUnit(t, m, slow); u.Stale || u.Position.Received.IsZero() {
		t.Fatalf("a fix received just now is stale (%v) or has no received time (%v)", u.Stale, u.Position.Received)
	}
	var inc struct {
		Recommendations dispatch.Recommendations `json:"recommendations"`
	}
	near := orb.Point{seat[0] + 0.0001, seat[1]} // 10 m away
	call := map[string]any{"location": map[string]float64{"lat": near.Lat(), "lon": near.Lon()}, "priority": 1, "category": "other"}
	if code := m.do(t, "POST", "/api/v1/incidents", call, &inc); code != http.StatusCreated {
		t.Fatalf("create incident: %d", code)
	}
	if c := inc.Recommendations.Candidates; len(c) == 0 || c[0].Unit != slow {
		t.Fatalf("candidates %+v, excluded %+v: want %s first", c, inc.Recommendations.Excluded, slow)
	}

	ft := newTerminal(t, m, fast)
	p := orb.Point{seat[0] + 0.01, seat[1]}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ft.fixAt(t, p, time.Now().Add(35*time.Second), 0.9)
		if u := getUnit(t, m, fast); u.Position != nil && u.Position.Seq == ft.seq {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	u := getUnit(t, m, fast)
	if u.Position == nil || u.Position.Seq != ft.seq {
		t.Fatalf("the fast terminal's fixes were never taken: %+v", u.Position)
	}
	if !u.ClockSuspect || u.ClockOffsetS < 30 || u.ClockOffsetS > 36 {
		t.Errorf("clock offset %vs suspect %v, want about +35s and suspect", u.ClockOffsetS, u.ClockSuspect)
	}
	if dropped := ft.seq - 1; dropped > 30 {
		t.Errorf("%d fixes dropped before the clock was learnt", dropped)
	}
	metrics := get(t, m.url("/metrics"))
	if !strings.Contains(metrics, `lifeline_telemetry_rejected_total{kind="gps",reason="future"}`) {
		t.Errorf("the dropped future fixes are not counted:\n%s", grepLines(metrics, "rejected_total"))
	}
}

// TestJumpWalk: a terminal hopping 289 m every 60 ms, each hop under the
// old 300 m floor, used to move its unit 11 km in 3 s.
func TestJumpWalk(t *testing.T) {
	m := startMain(t, nil)
	unit := m.Area.Units[0].ID
	term := newTerminal(t, m, unit)
	seat := orb.Point{104.9818, 29.1838}
	term.fixAt(t, seat, time.Now(), 0.9)
	waitFor(t, 2*time.Second, "the first fix", func() bool { return getUnit(t, m, unit).Position != nil })
	const hop = 289.0 / 111195 // degrees of latitude
	for i := 1; i <= 40; i++ {
		term.fixAt(t, orb.Point{seat[0], seat[1] + float64(i)*hop}, time.Now(), 0.9)
		time.Sleep(60 * time.Millisecond)
	}
	last := orb.Point{seat[0] + 0.0001, seat[1]} // then a real fix by the start
	term.fixAt(t, last, time.Now(), 0.9)
	deadline := time.Now().Add(2 * time.Second)
	for u := getUnit(t, m, unit); u.Position.Seq != term.seq; u = getUnit(t, m, unit) {
		if time.Now().After(deadline) {
			at := orb.Point{u.Position.Lon, u.Position.Lat}
			t.Fatalf("the walk took the unit %.0f m from where it was, and a fix there is now an impossible jump", geo.Distance(seat, at))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := metricValue(t, m, `lifeline_telemetry_rejected_total{kind="gps",reason="impossible_jump"}`); n < 38 {
		t.Errorf("%v of 40 hops rejected, want 38 or more", n)
	}
}

// metricValue reads one sample of the server's /metrics.
func metricValue(tb testing.TB, m *server, series string) float64 {
	tb.Helper()
	for _, l := range strings.Split(get(tb, m.url("/metrics")), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("metric %s: %q", series, l)
			}
			return f
		}
	}
	return 0
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRefusedPublishFlood: a valid terminal publishing 250 KB at QoS 1 to
// another unit's topic and reconnecting, over and over, filled the log at
// about 40 MB/s. Now no line carries a payload, refusals are logged a few
// times a minute, and the terminal is refused at CONNECT for a growing
// time.
func TestRefusedPublishFlood(t *testing.T) {
	var logged lockedBuffer
	m := startMainLog(t, nil, &logged)
	attacker, victim := m.Area.Units[0].ID, m.Area.Units[1].ID
	password := m.credentials(t, attacker)
	payload := []byte(strings.Repeat("PAYLOAD-OF-THE-FLOOD ", 250_000/21))

	var connects, refused int
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		lost := make(chan struct{}, 1)
		opts := terminalOptions(m.MQTTURL(), attacker, password).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second).
			SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} })
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			refused++
			continue
		}
		connects++
		c.Publish(telemetry.Topic(victim, telemetry.KindGPS), 1, false, payload)
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Fatal("a refused QoS 1 publish did not end the connection")
		}
		c.Disconnect(0)
	}
	out := logged.String()
	t.Logf("%d connects, %d refused, %d bytes of log", connects, refused, len(out))
	if refused == 0 || connects > 8 {
		t.Errorf("%d connects and %d refused in 3 s: want the terminal refused after a few", connects, refused)
	}
	if carries(out, "PAYLOAD-OF-THE-FLOOD") {
		t.Errorf("the log carries the payload (%d bytes of log)", len(out))
	}
	if len(out) > 16<<10 {
		t.Errorf("%d bytes of log in 3 s:\n%.4000s", len(out), out)
	}
	if n := metricValue(t, m, `lifeline_mqtt_denied_total{reason="penalty"}`); n == 0 {
		t.Error("no CONNECT refused for the penalty in lifeline_mqtt_denied_total")
	}
	// The unit whose topic was attacked reports as usual.
	newTerminal(t, m, victim).fix(t, orb.Point{104.9818, 29.1838})
}

// TestMQTTConnectionCap: about 20,000 idle MQTT sockets took every file
// descriptor and slowed /livez to 4 s. The broker now holds at most
// --mqtt-max-conns connections, closing any more at once, and the HTTP
// API stays quick.
func TestMQTTConnectionCap(t *testing.T) {
	const maxConns, extra = 40, 60
	m := startMain(t, func(c *Config) { c.MQTTMaxConns = maxConns })
	addr := strings.TrimPrefix(m.MQTTURL(), "tcp://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refusedAtDial := 0
	for range maxConns + extra {
		c, err := net.Dial("tcp", addr)
		if err != nil { // reset before the dial returned
			refusedAtDial++
			continue
		}
		conns = append(conns, c)
	}
	// Held sockets stay silent; refused ones are reset at once.
	time.Sleep(300 * time.Millisecond)
	held := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); errors.Is(err, os.ErrDeadlineExceeded) {
			held++
		}
	}
	if held != maxConns {
		t.Errorf("%d idle connections held (%d refused at dial), want %d", held, refusedAtDial, maxConns)
	}
	if n := metricValue(t, m, `lifeline_mqtt_denied_total{reason="conn_limit"}`); n != extra {
		t.Errorf("lifeline_mqtt_denied_total{reason=conn_limit} = %v, want %d", n, extra)
	}
	start := time.Now()
	if body := get(t, m.url("/livez")); !strings.Contains(body, "ok") {
		t.Errorf("/livez: %s", body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("/livez took %s with the broker full", d)
	}
	// Once the idle sockets go, terminals get in again.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	unit := m.Area.Units[0].ID
	password := m.credentials(t, unit)
	waitFor(t, 5*time.Second, "a terminal connected", func() bool {
		c := paho.NewClient(terminalOptions(m.MQTTURL(), unit, password).SetConnectTimeout(time.Second))
		tok := c.Connect()
		ok := tok.WaitTimeout(2*time.Second) && tok.Error() == nil
		if ok {
			c.Disconnect(0)
		}
		return ok
	})
}

// tinyDisk mounts a tmpfs of size bytes for the test and returns its path;
// the test is skipped where mounting is not allowed (not root).
func tinyDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs to fill (root is needed): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the disk is full and returns its name.
func fill(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	for n := len(buf) / 2; n > 0; n /= 2 { // the last crumbs too
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return f.Name()
}

// TestDiskFull: with the disk full, a new call got 500 and /readyz stayed
// ready while nothing could be written. Now the call gets 503 (try again),
// readiness fails until the data directory has room again, and then
// everything works without a restart.
func TestDiskFull(t *testing.T) {
	dir := tinyDisk(t, 16<<20)
	m := startMain(t, func(c *Config) { c.DataDir = dir })
	call := map[string]any{"location": map[string]float64{"lat": 29.1838, "lon": 104.9818}, "priority": 2, "category": "other", "address": strings.Repeat("a long address ", 30)}
	filler := fill(t, dir)

	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	code, calls := http.StatusCreated, 0
	for ; code == http.StatusCreated && calls < 5000; calls++ {
		code = m.do(t, "POST", "/api/v1/incidents", call, &e)
	}
	t.Logf("the disk took %d calls", calls-1)
	if code != http.StatusServiceUnavailable || e.Error.Code != "unavailable" {
		t.Fatalf("call %d on a full disk: %d %s, want 503 unavailable", calls, code, e.Error.Code)
	}
	resp, err := http.Get(m.url("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a full disk: %d, want 503", resp.StatusCode)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "ready again", func() bool {
		resp, err := http.Get(m.url("/readyz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code := m.do(t, "POST", "/api/v1/incidents", call, nil); code != http.StatusCreated {
		t.Fatalf("a call once there is room again: %d", code)
	}
}
