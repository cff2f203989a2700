package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// testWriter sends logs to t.Log so a failing test shows them.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testAdminPassword is the first administrator's password in tests.
const testAdminPassword = "test-admin-password-1"

// server is a running Main and an administrator's token for its API.
type server struct {
	*Main
	token string
}

// startMain runs the real server on free loopback ports and signs in as admin.
func startMain(tb testing.TB, mutate func(*Config)) *server {
	tb.Helper()
	return startMainLog(tb, mutate, testWriter{tb})
}

// startMainLog is startMain with the server's log (warnings and errors)
// written to logTo.
func startMainLog(tb testing.TB, mutate func(*Config), logTo io.Writer) *server {
	tb.Helper()
	m := NewMain()
	m.Config.AdminPassword = testAdminPassword
	m.Config.HTTP = "127.0.0.1:0"
	m.Config.MQTTListen = "127.0.0.1:0"
	m.Config.DataDir = tb.TempDir()
	if mutate != nil {
		mutate(&m.Config)
	}
	m.Logger = slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("Main.Run: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Main.Close: %v", err)
		}
	})
	waitFor(tb, 10*time.Second, "server ready", func() bool {
		resp, err := http.Get(m.url("/readyz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	s := &server{Main: m}
	if m.Config.AdminPassword != "" {
		s.token = s.login(tb, "admin", m.Config.AdminPassword)
	}
	return s
}

func (m *Main) url(path string) string { return "http://" + m.HTTPAddr().String() + path }

// login signs in and returns the bearer token.
func (s *server) login(tb testing.TB, user, password string) string {
	tb.Helper()
	var out struct{ Token string }
	if code := doJSON(tb, "", "POST", s.url("/api/v1/sessions"), map[string]string{"username": user, "password": password}, &out); code != http.StatusCreated || out.Token == "" {
		tb.Fatalf("sign in as %s: %d", user, code)
	}
	return out.Token
}

// do calls the API as the administrator.
func (s *server) do(tb testing.TB, method, path string, body, out any) int {
	tb.Helper()
	return doJSON(tb, s.token, method, s.url(path), body, out)
}

func waitFor(tb testing.TB, d time.Duration, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// terminal is a vehicle terminal: a real paho client.
type terminal struct {
	unit string
	c    paho.Client
	seq  uint64
	cmds chan telemetry.Command
}

// credentials issues (or rotates) the broker password of a unit's terminal.
func (s *server) credentials(tb testing.TB, unit string) string {
	tb.Helper()
	var c struct{ Username, Password string }
	if code := s.do(tb, "POST", "/api/v1/units/"+unit+"/credentials", nil, &c); code != http.StatusCreated || c.Username != unit || c.Password == "" {
		tb.Fatalf("credentials for %s: %d %+v", unit, code, c)
	}
	return c.Password
}

// terminalOptions are a unit terminal's connection settings, as a vendor
// would configure them: unit id as client id and username.
func terminalOptions(brokerURL, unit, password string) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker(brokerURL).SetClientID(unit).SetUsername(unit).SetPassword(password).
		SetCleanSession(true).SetAutoReconnect(false).SetWill(telemetry.Topic(unit, telemetry.KindOnline), "offline", 1, true)
}

func newTerminal(tb testing.TB, s *server, unit string) *terminal {
	tb.Helper()
	t := &terminal{unit: unit, cmds: make(chan telemetry.Command, 16)}
	opts := terminalOptions(s.MQTTURL(), unit, s.credentials(tb, unit))
	t.c = paho.NewClient(opts)
	if tok := t.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("terminal %s connect: %v", unit, tok.Error())
	}
	tok := t.c.Subscribe(telemetry.Topic(unit, telemetry.KindCmd), 1, func(_ paho.Client, m paho.Message) {
		if c, err := telemetry.DecodeCommand(m.Payload()); err == nil {
			t.cmds <- c
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("terminal %s subscribe: %v", unit, tok.Error())
	}
	t.publish(tb, telemetry.KindOnline, []byte("online"), true)
	tb.Cleanup(func() { t.c.Disconnect(100) })
	return t
}

func (t *terminal) publish(tb testing.TB, k telemetry.Kind, payload []byte, retained bool) {
	tb.Helper()
	tok := t.c.Publish(telemetry.Topic(t.unit, k), 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("terminal %s publish %s: %v", t.unit, k, tok.Error())
	}
}

func (t *terminal) fix(tb testing.TB, p orb.Point) {
	tb.Helper()
	t.seq++
	t.publish(tb, telemetry.KindGPS, telemetry.EncodeFixes(telemetry.Fix{
		Seq: t.seq, Time: time.Now().UTC(), Lat: p.Lat(), Lon: p.Lon(), SpeedKmh: 30, Heading: 90, HDOP: 0.9, Sats: 11,
	}), false)
}

// console is a websocket client on /api/v1/live.
type console struct {
	conn *websocket.Conn
	mu   sync.Mutex
	msgs []map[string]json.RawMessage
}

func dialConsole(tb testing.TB, s *server) *console {
	tb.Helper()
	return dialConsoleAs(tb, s, s.token)
}

// dialConsoleAs opens the live feed of the user signed in with token.
func dialConsoleAs(tb testing.TB, s *server, token string) *console {
	tb.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+s.HTTPAddr().String()+"/api/v1/live", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		tb.Fatalf("dial live: %v (%v)", err, resp)
	}
	c := &console{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var msg map[string]json.RawMessage
			if err := conn.ReadJSON(&msg); err != nil {
				return
			}
			msgs := []map[string]json.RawMessage{msg}
			if string(msg["type"]) == `"batch"` { // deltas come batched: keep them one by one
				msgs = nil
				_ = json.Unmarshal(msg["events"], &msgs)
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, msgs...)
			c.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { conn.Close(); <-done })
	return c
}

// unitAt reports whether the console has seen unit at p.
func (c *console) unitAt(unit string, p orb.Point) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		var typ string
		_ = json.Unmarshal(m["type"], &typ)
		if typ != "unit" {
			continue
		}
		var u dispatch.UnitState
		_ = json.Unmarshal(m["unit"], &u)
		if u.ID == unit && u.Position != nil && u.Position.Lat == p.Lat() && u.Position.Lon == p.Lon() {
			return true
		}
	}
	return false
}

func (c *console) first() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) == 0 {
		return ""
	}
	var typ string
	_ = json.Unmarshal(c.msgs[0]["type"], &typ)
	return typ
}

// requestJSON calls the API and decodes the reply into out (when not nil).
func requestJSON(token, method, url string, body, out any) (int, error) {
	return requestJSONWith(http.DefaultClient, token, method, url, body, out)
}

// requestJSONWith is requestJSON with a client of the caller's (TLS).
func requestJSONWith(client *http.Client, token, method, url string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, url, err)
		}
	}
	return resp.StatusCode, nil
}

func doJSON(tb testing.TB, token, method, url string, body any, out any) int {
	tb.Helper()
	code, err := requestJSON(token, method, url, body, out)
	if err != nil {
		tb.Fatal(err)
	}
	return code
}

func TestEndToEnd(t *testing.T) {
	m := startMain(t, nil)
	con := dialConsole(t, m)
	waitFor(t, 5*time.Second, "snapshot", func() bool { return con.first() == "snapshot" })

	// Terminals around the Fushun county seat, one of them offline later.
	seat := orb.Point{104.9818, 29.1838}
	units := m.Area.Units
	pos := map[string]orb.Point{}
	terms := map[string]*terminal{}
	for i, u := range units[:8] {
		p := orb.Point{seat[0] + float64(i%4-2)*0.012 + 0.003, seat[1] + float64(i/4-1)*0.015 + 0.002}
		pos[u.ID] = p
		terms[u.ID] = newTerminal(t, m, u.ID)
		start := time.Now()
		terms[u.ID].fix(t, p)
		waitFor(t, time.Second, "fix of "+u.ID+" on the websocket", func() bool { return con.unitAt(u.ID, p) })
		if d := time.Since(start); d > time.Second {
			t.Errorf("fix took %s to reach the console", d)
		}
	}

	// Bad input moves nothing and crashes nothing.
	victim := terms[units[0].ID]
	before := getUnit(t, m, units[0].ID)
	bad := [][]byte{
		[]byte(`{"seq":`),
		[]byte(`not json`),
		[]byte(`{"seq":999,"ts":"2026-11-23T08:00:00Z","lat":91,"lon":104.98}`),
		[]byte(`{"seq":1000,"ts":"2026-11-23T08:00:00Z","lat":29.18,"lon":181}`),
		[]byte(`{"seq":1001,"ts":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","lat":29.18,"lon":104.98}`),
		[]byte(`{"seq":1002,"ts":"` + time.Now().UTC().Format(time.RFC3339) + `","lat":39.9,"lon":116.4}`), // 1,500 km away in a second
		[]byte(`[{"seq":"x"}]`),
	}
	for _, b := range bad {
		victim.publish(t, telemetry.KindGPS, b, false)
	}
	// Nobody gets in without a unit's credentials, nor as another unit.
	for _, opts := range []*paho.ClientOptions{
		terminalOptions(m.MQTTURL(), "NOT-A-UNIT", "guess-guess-guess"),
		terminalOptions(m.MQTTURL(), units[0].ID, "wrong-password-123"),
		terminalOptions(m.MQTTURL(), units[0].ID, "").SetUsername(""),
	} {
		c := paho.NewClient(opts)
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(0)
			t.Fatalf("broker let in %q with a wrong or missing password", opts.Username)
		}
	}
	// A sentinel after the bad input: once it lands, everything before it was handled.
	good := orb.Point{pos[units[0].ID][0] + 0.0001, pos[units[0].ID][1]}
	victim.fix(t, good)
	waitFor(t, 2*time.Second, "sentinel fix", func() bool { return con.unitAt(units[0].ID, good) })
	after := getUnit(t, m, units[0].ID)
	if after.Position.Seq != before.Position.Seq+1 {
		t.Fatalf("bad input moved the unit: seq %d -> %d", before.Position.Seq, after.Position.Seq)
	}
	pos[units[0].ID] = good
	if code := m.do(t, "GET", "/api/v1/units/NOT-A-UNIT", nil, nil); code != http.StatusNotFound {
		t.Fatalf("unknown unit became known: %d", code)
	}
	metrics := get(t, m.url("/metrics"))
	for _, reason := range []string{"malformed", "out_of_range", "future", "impossible_jump"} {
		if !strings.Contains(metrics, `reason="`+reason+`"`) {
			t.Errorf("metrics do not count %s rejections", reason)
		}
	}

	// One unit dispatched elsewhere, one offline: neither may be recommended.
	busy, gone := units[1].ID, units[2].ID
	terms[gone].publish(t, telemetry.KindOnline, []byte("offline"), true)
	waitFor(t, 2*time.Second, gone+" offline", func() bool { return !getUnit(t, m, gone).Online })
	var first struct {
		ID              string                   `json:"id"`
		Recommendations dispatch.Recommendations `json:"recommendations"`
	}
	call := map[string]any{"location": map[string]float64{"lat": pos[busy].Lat(), "lon": pos[busy].Lon()}, "priority": 2, "category": "trauma", "address": "first"}
	if code := m.do(t, "POST", "/api/v1/incidents", call, &first); code != http.StatusCreated {
		t.Fatalf("create incident: %d", code)
	}
	if code := m.do(t, "POST", "/api/v1/incidents/"+first.ID+"/assignments", map[string]string{"unit": busy}, nil); code != http.StatusCreated {
		t.Fatalf("assign %s: %d", busy, code)
	}

	loc := orb.Point{seat[0] + 0.004, seat[1] - 0.003}
	var inc struct {
		ID              string                   `json:"id"`
		Jurisdiction    string                   `json:"jurisdiction"`
		Zone            string                   `json:"zone"`
		RadiusM         float64                  `json:"radius_m"`
		Recommendations dispatch.Recommendations `json:"recommendations"`
	}
	call = map[string]any{"location": map[string]float64{"lat": loc.Lat(), "lon": loc.Lon()}, "priority": 1, "category": "chest_pain", "address": "富世镇 test"}
	if code := m.do(t, "POST", "/api/v1/incidents", call, &inc); code != http.StatusCreated {
		t.Fatalf("create incident: %d", code)
	}
	if inc.Jurisdiction != "510322" || inc.Zone != "urban" || inc.RadiusM != 5000 {
		t.Fatalf("incident located in %s %s radius %v, want 510322 urban 5000", inc.Jurisdiction, inc.Zone, inc.RadiusM)
	}
	// Brute force: the nearest eligible unit by haversine with an ALS
	// crew, which a priority-1 call needs when one is within the radius.
	als := map[string]bool{}
	for _, u := range units {
		als[u.ID] = u.Has(dispatch.ALS)
	}
	var nearest string
	best := 0.0
	for id, p := range pos {
		if id == busy || id == gone || !als[id] {
			continue
		}
		if d := geo.Distance(loc, p); nearest == "" || d < best || (d == best && id < nearest) {
			nearest, best = id, d
		}
	}
	if len(inc.Recommendations.Candidates) == 0 {
		t.Fatal("no recommendations")
	}
	top := inc.Recommendations.Candidates[0]
	if top.Unit != nearest {
		t.Fatalf("first recommendation %s (%.0f m), brute force says %s (%.0f m)", top.Unit, top.DistanceM, nearest, best)
	}
	for _, c := range inc.Recommendations.Candidates {
		if c.Unit == busy || c.Unit == gone {
			t.Fatalf("ineligible unit %s recommended", c.Unit)
		}
	}
	excluded := map[string]string{}
	for _, e := range inc.Recommendations.Excluded {
		excluded[e.Unit] = e.Reason
	}
	if excluded[busy] == "" || excluded[gone] == "" {
		t.Fatalf("exclusions %v do not explain %s and %s", excluded, busy, gone)
	}

	var a dispatch.Assignment
	if code := m.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": nearest}, &a); code != http.StatusCreated {
		t.Fatalf("assign: %d", code)
	}
	select {
	case cmd := <-terms[nearest].cmds:
		var ci struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(cmd.Incident, &ci)
		if cmd.Type != "assign" || cmd.Assignment != a.ID || ci.ID != inc.ID {
			t.Fatalf("command %+v, want assign %s for %s", cmd, a.ID, inc.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no assign command on %s", telemetry.Topic(nearest, telemetry.KindCmd))
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code := m.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": nearest}, &e); code != http.StatusConflict || e.Error.Code != "conflict" {
		t.Fatalf("second assign: %d %+v, want 409 conflict", code, e)
	}

	// The crew acks and presses en_route: the console sees the assignment accepted.
	terms[nearest].publish(t, telemetry.KindAck, telemetry.EncodeAck(telemetry.Ack{Assignment: a.ID, Accepted: true}), false)
	terms[nearest].publish(t, telemetry.KindStatus, telemetry.EncodeStatus(telemetry.Status{Time: time.Now().UTC(), Status: "en_route", Incident: inc.ID}), false)
	waitFor(t, 2*time.Second, "en_route", func() bool { return getUnit(t, m, nearest).Status == dispatch.EnRoute })

	// The incident's timeline: every transition, and the unit's track while assigned.
	onTheWay := orb.Point{pos[nearest][0] + 0.0002, pos[nearest][1]} // 20 m: the fix before was a moment ago
	terms[nearest].fix(t, onTheWay)
	waitFor(t, 2*time.Second, "the fix on the way", func() bool { return con.unitAt(nearest, onTheWay) })
	var timeline struct {
		Transitions []dispatch.Transition `json:"transitions"`
		Tracks      []struct {
			Assignment string `json:"assignment"`
			Unit       string `json:"unit"`
			Fixes      []struct {
				Seq uint64 `json:"seq"`
			} `json:"fixes"`
		} `json:"tracks"`
	}
	if code := m.do(t, "GET", "/api/v1/incidents/"+inc.ID, nil, &timeline); code != http.StatusOK {
		t.Fatalf("incident timeline: %d", code)
	}
	var path []dispatch.UnitStatus
	for _, tr := range timeline.Transitions {
		path = append(path, tr.To)
	}
	if len(path) != 2 || path[0] != dispatch.Dispatched || path[1] != dispatch.EnRoute {
		t.Errorf("timeline transitions %v, want dispatched then en_route", path)
	}
	// The unit's first fix came before the assignment; only the one on the way belongs.
	if len(timeline.Tracks) != 1 || timeline.Tracks[0].Assignment != a.ID || len(timeline.Tracks[0].Fixes) != 1 ||
		timeline.Tracks[0].Fixes[0].Seq != terms[nearest].seq {
		t.Fatalf("timeline tracks %+v: want %s's one fix (seq %d) while assigned", timeline.Tracks, nearest, terms[nearest].seq)
	}
}

func getUnit(tb testing.TB, m *server, id string) dispatch.UnitState {
	tb.Helper()
	var u dispatch.UnitState
	if code := m.do(tb, "GET", "/api/v1/units/"+id, nil, &u); code != http.StatusOK {
		tb.Fatalf("GET unit %s: %d", id, code)
	}
	return u
}

func get(tb testing.TB, url string) string {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestHTTPBadInput(t *testing.T) {
	m := startMain(t, nil)
	long := `{"location":{"lat":29.18,"lon":104.98},"priority":1,"category":"other","address":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode                 string
	}{
		{"malformed JSON", "POST", "/api/v1/incidents", `{"location":`, 400, "invalid"},
		{"not JSON", "POST", "/api/v1/incidents", `hello`, 400, "invalid"},
		{"empty body", "POST", "/api/v1/incidents", ``, 400, "invalid"},
		{"wrong type", "POST", "/api/v1/incidents", `{"location":{"lat":"29.18","lon":104.98},"priority":1,"category":"other"}`, 400, "invalid"},
		{"unknown field", "POST", "/api/v1/incidents", `{"location":{"lat":29.18,"lon":104.98},"priority":1,"category":"other","prioirty":2}`, 400, "invalid"},
		{"trailing data", "POST", "/api/v1/incidents", `{"location":{"lat":29.18,"lon":104.98},"priority":1,"category":"other"} {}`, 400, "invalid"},
		{"out of range", "POST", "/api/v1/incidents", `{"location":{"lat":95,"lon":104.98},"priority":1,"category":"other"}`, 400, "invalid"},
		{"outside every jurisdiction", "POST", "/api/v1/incidents", `{"location":{"lat":39.9,"lon":116.4},"priority":1,"category":"other"}`, 400, "invalid"},
		{"oversized body", "POST", "/api/v1/incidents", long, 413, "invalid"},
		{"unknown incident", "GET", "/api/v1/incidents/INC-nope", ``, 404, "not_found"},
		{"assign to unknown incident", "POST", "/api/v1/incidents/INC-nope/assignments", `{"unit":"FS-01"}`, 404, "not_found"},
		{"unknown unit", "GET", "/api/v1/units/XX-99", ``, 404, "not_found"},
		{"bad track time", "GET", "/api/v1/units/FS-01/track?from=yesterday", ``, 400, "invalid"},
		{"bad status filter", "GET", "/api/v1/incidents?status=maybe", ``, 400, "invalid"},
		{"unknown jurisdiction", "GET", "/api/v1/units?jurisdiction=999999", ``, 400, "invalid"},
		{"unknown endpoint", "GET", "/api/v1/nothing", ``, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, m.url(tt.path), strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+m.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || e.Error.Code != tt.wantCode || e.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s with a message", resp.StatusCode, e.Error, tt.wantStatus, tt.wantCode)
			}
		})
	}
	var list struct{ Incidents []json.RawMessage }
	m.do(t, "GET", "/api/v1/incidents", nil, &list)
	if len(list.Incidents) != 0 {
		t.Fatalf("bad requests stored %d incidents", len(list.Incidents))
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"mqtt", func(c *Config) { c.MQTTListen = taken }, "--mqtt-listen"},
		{"http", func(c *Config) { c.HTTP = taken }, "--http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.Config.HTTP, m.Config.MQTTListen, m.Config.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
			m.Config.AdminPassword = testAdminPassword
			tt.mutate(&m.Config)
			m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			err := m.Run(context.Background())
			if err == nil {
				m.Close()
				t.Fatal("Run succeeded on a port in use")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "already in use") || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q: want one line saying the port is in use and naming %s", msg, tt.want)
			}
		})
	}
}

// TestOneWriterPerDataDir: a second server on the same data directory is
// refused in one line naming the holder; once the first stops, the
// directory can be used again.
func TestOneWriterPerDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startMain(t, func(c *Config) { c.DataDir = dir })
	m := NewMain()
	m.Config.HTTP, m.Config.MQTTListen, m.Config.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	m.Config.AdminPassword = testAdminPassword
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	err := m.Run(context.Background())
	if err == nil {
		m.Close()
		t.Fatal("a second server started on the same data directory")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "held by another lifelined (pid "+strconv.Itoa(os.Getpid())+")") || !strings.Contains(msg, "--data-dir") {
		t.Fatalf("error %q: want one line naming the holder's pid and --data-dir", msg)
	}
	// The first server is unharmed, and the refused one left nothing behind.
	if code := first.do(t, "GET", "/api/v1/units", nil, nil); code != http.StatusOK {
		t.Fatalf("first server after the refusal: %d", code)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := NewMain()
	again.Config.HTTP, again.Config.MQTTListen, again.Config.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	again.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := again.Run(context.Background()); err != nil {
		t.Fatalf("the directory stays locked after its server stopped: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	c := DefaultConfig()
	env := map[string]string{"LIFELINE_HTTP": ":9090", "LIFELINE_DEMO": "true", "LIFELINE_MQTT_LISTEN": ":1999"}
	if err := c.Parse("lifelined", []string{"--http", ":9191"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.HTTP != ":9191" || !c.Demo || c.MQTTListen != ":1999" {
		t.Fatalf("config %+v: flags must win over the environment, the environment over defaults", c)
	}
	c = DefaultConfig()
	if err := c.Parse("lifelined", nil, func(k string) string { return map[string]string{"LIFELINE_DEMO": "perhaps"}[k] }); err == nil {
		t.Fatal("a bad environment value was accepted")
	}
}

// TestDemoMoves runs the embedded default with --demo and sees units move.
func TestDemoMoves(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true; c.DemoSpeedup = 20; c.DemoCalls = 2 * time.Second })
	first := map[string]dispatch.Position{}
	moved := func() bool {
		var body struct{ Units []dispatch.UnitState }
		m.do(t, "GET", "/api/v1/units", nil, &body)
		n := 0
		for _, u := range body.Units {
			if u.Position == nil {
				continue
			}
			p, ok := first[u.ID]
			if !ok {
				first[u.ID] = *u.Position
				continue
			}
			if p.Lat != u.Position.Lat || p.Lon != u.Position.Lon {
				n++
			}
		}
		return n >= 3
	}
	waitFor(t, 30*time.Second, "three demo units moving", moved)
	waitFor(t, 30*time.Second, "a demo call assigned", func() bool {
		var body struct{ Incidents []dispatch.Incident }
		m.do(t, "GET", "/api/v1/incidents?status=assigned", nil, &body)
		return len(body.Incidents) > 0
	})
	if units, _ := m.Service.Units(dispatch.System, ""); len(units) != 18 {
		t.Fatalf("demo has %d units, want 18", len(units))
	}
}

// TestExternalBroker runs lifelined on the real Mosquitto (--mqtt-url): the
// paho ingester reads the terminals, the command goes back through the
// broker. The broker here allows anonymous clients; its access rules are
// deploy/mosquitto.conf's business (tested in telemetry/mqtt).
func TestExternalBroker(t *testing.T) {
	url := os.Getenv("LIFELINE_TEST_MQTT_URL")
	if url == "" {
		url = "tcp://127.0.0.1:1883"
	}
	ingestID := fmt.Sprintf("lifelined-test-%d", time.Now().UnixNano())
	t.Cleanup(func() { // the ingest client's persistent session would stay on the broker
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(ingestID).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(100)
		}
	})
	m := startMain(t, func(c *Config) {
		c.MQTTURL, c.MQTTListen, c.MQTTClientID = url, "", ingestID
	})
	unit := "FS-07"
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-%s-%d", unit, time.Now().UnixNano())).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to Mosquitto at %s (make test starts it): %v", url, tok.Error())
	}
	defer c.Disconnect(100)
	cmds := make(chan telemetry.Command, 4)
	if tok := c.Subscribe(telemetry.Topic(unit, telemetry.KindCmd), 1, func(_ paho.Client, msg paho.Message) {
		if cmd, err := telemetry.DecodeCommand(msg.Payload()); err == nil {
			cmds <- cmd
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	at := orb.Point{104.9818, 29.1838}
	publish := func(k telemetry.Kind, payload []byte) {
		if tok := c.Publish(telemetry.Topic(unit, k), 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	publish(telemetry.KindOnline, []byte("online"))
	publish(telemetry.KindGPS, telemetry.EncodeFixes(telemetry.Fix{Seq: 1, Time: time.Now().UTC(), Lat: at.Lat(), Lon: at.Lon()}))
	waitFor(t, 5*time.Second, unit+" moved through Mosquitto", func() bool {
		u := getUnit(t, m, unit)
		return u.Position != nil && u.Position.Lat == at.Lat() && u.Online
	})
	var inc struct{ ID string }
	call := map[string]any{"location": map[string]float64{"lat": at.Lat(), "lon": at.Lon()}, "priority": 1, "category": "stroke"}
	if code := m.do(t, "POST", "/api/v1/incidents", call, &inc); code != http.StatusCreated {
		t.Fatalf("create incident: %d", code)
	}
	if code := m.do(t, "POST", "/api/v1/incidents/"+inc.ID+"/assignments", map[string]string{"unit": unit}, nil); code != http.StatusCreated {
		t.Fatalf("assign: %d", code)
	}
	select {
	case cmd := <-cmds:
		if cmd.Type != telemetry.CommandAssign {
			t.Fatalf("command %+v", cmd)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no assign command through Mosquitto")
	}
}

// TestCreateIncidentIdempotent: an integrator retrying a call after a lost
// reply gets the same incident, 201 as the contract says, marked as a
// replay, and only one incident is stored.
func TestCreateIncidentIdempotent(t *testing.T) {
	m := startMain(t, nil)
	call := map[string]any{"location": map[string]float64{"lat": 29.1838, "lon": 104.9818}, "priority": 1, "category": "stroke", "source": "city-120", "external_id": "ZG-2026-000123"}
	send := func() (int, string, string) {
		b, _ := json.Marshal(call)
		req, _ := http.NewRequest("POST", m.url("/api/v1/incidents"), bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+m.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var inc struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&inc)
		return resp.StatusCode, inc.ID, resp.Header.Get("Idempotent-Replayed")
	}
	code1, id1, replay1 := send()
	code2, id2, replay2 := send()
	if code1 != http.StatusCreated || code2 != http.StatusCreated || id1 == "" || id1 != id2 || replay1 != "" || replay2 != "true" {
		t.Fatalf("first %d %s replayed=%q, again %d %s replayed=%q: want 201 twice, one id, the second marked", code1, id1, replay1, code2, id2, replay2)
	}
	var list struct{ Incidents []json.RawMessage }
	m.do(t, "GET", "/api/v1/incidents", nil, &list)
	if len(list.Incidents) != 1 {
		t.Fatalf("%d incidents stored, want 1", len(list.Incidents))
	}
}

// TestReadyz: ready only while both the record and the broker answer; a
// load balancer must stop sending dispatchers to a server whose database
// has gone.
func TestReadyz(t *testing.T) {
	m := startMain(t, nil)
	if code, _ := requestJSON("", "GET", m.url("/readyz"), nil, nil); code != http.StatusOK {
		t.Fatalf("readyz of a healthy server: %d", code)
	}
	if err := m.record.Close(); err != nil { // the database goes away
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code, _ := requestJSON("", "GET", m.url("/readyz"), nil, &e); code != http.StatusServiceUnavailable || e.Error.Code != "unavailable" || !strings.Contains(e.Error.Message, "record") {
		t.Fatalf("readyz without a database: %d %+v, want 503 unavailable naming the record", code, e.Error)
	}
	if code, _ := requestJSON("", "GET", m.url("/livez"), nil, nil); code != http.StatusOK {
		t.Fatalf("livez without a database: %d: the process is alive, only not ready", code)
	}
}

// TestBrokerPasswordNotShown: credentials in --mqtt-url never reach the
// log or the open /readyz, even while the broker cannot be reached.
func TestBrokerPasswordNotShown(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	m := NewMain()
	m.Config.HTTP, m.Config.MQTTListen, m.Config.DataDir = "127.0.0.1:0", "", t.TempDir()
	m.Config.MQTTURL = "tcp://lifelined:s3cret-pa55word@" + freePort(t) // nothing listens there
	m.Config.AdminPassword = testAdminPassword
	m.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if code, _ := requestJSON("", "GET", m.url("/readyz"), nil, &e); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz without a broker: %d", code)
	}
	time.Sleep(200 * time.Millisecond) // let the ingester log a failed attempt
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(e.Error.Message, "s3cret") || strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("the broker password is shown:\nreadyz: %s\nlogs: %s", e.Error.Message, logs.String())
	}
	if !strings.Contains(e.Error.Message, "lifelined:xxxxx@") {
		t.Fatalf("readyz %q: want the broker named, its password redacted", e.Error.Message)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestParseProxies(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"10.0.0.0/8, 192.168.1.5", []string{"10.0.0.0/8", "192.168.1.5/32"}, false},
		{"::1", []string{"::1/128"}, false},
		{"10.0.0.0/8,nginx", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseProxies(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProxies(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			var s []string
			for _, n := range got {
				s = append(s, n.String())
			}
			if strings.Join(s, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("parseProxies(%q) = %v, want %v", tt.in, s, tt.want)
			}
		})
	}
}

func TestWithHost(t *testing.T) {
	tests := []struct{ addr, host, want string }{
		{"[::]:1883", "127.0.0.1", "127.0.0.1:1883"},
		{"0.0.0.0:8080", "localhost", "localhost:8080"},
		{"127.0.0.1:1884", "localhost", "127.0.0.1:1884"},
		{"[::1]:8080", "localhost", "[::1]:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a, err := net.ResolveTCPAddr("tcp", tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := withHost(a, tt.host); got != tt.want {
				t.Fatalf("withHost(%s, %s) = %s, want %s", tt.addr, tt.host, got, tt.want)
			}
		})
	}
}
