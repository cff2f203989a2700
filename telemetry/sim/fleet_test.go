package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/paulmach/orb"
	"go.uber.org/goleak"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// brokerURL returns the test broker: LIFELINE_TEST_MQTT_URL, else the
// system Mosquitto. CI guarantees one, so an unreachable broker fails the
// test rather than skipping it.
func brokerURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("LIFELINE_TEST_MQTT_URL")
	if url == "" {
		url = "tcp://127.0.0.1:1883"
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fleetsim-probe-" + suffix(tb)).SetConnectTimeout(3 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("no MQTT broker at %s (%v): start Mosquitto on 127.0.0.1:1883 or set LIFELINE_TEST_MQTT_URL", url, tok.Error())
	}
	c.Disconnect(0)
	return url
}

// suffix returns a random string that keeps this run's ids apart from
// other runs on the same broker.
func suffix(tb testing.TB) string {
	tb.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// msg is one message a watcher received.
type msg struct {
	unit     string
	kind     telemetry.Kind
	payload  []byte
	retained bool
	at       time.Time
}

// watcher records every message on the topics of some units.
type watcher struct {
	c   paho.Client
	mu  sync.Mutex
	log []msg
}

// watch subscribes to every topic of units; it disconnects at cleanup.
func watch(tb testing.TB, url string, units ...string) *watcher {
	tb.Helper()
	w := &watcher{}
	w.c = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fleetsim-watch-" + suffix(tb)))
	if tok := w.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("watcher connect: %v", tok.Error())
	}
	tb.Cleanup(func() { w.c.Disconnect(0) })
	filters := map[string]byte{}
	for _, u := range units {
		filters[telemetry.Prefix+u+"/+"] = 1
	}
	tok := w.c.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		unit, k, err := telemetry.ParseTopic(m.Topic())
		if err != nil {
			return
		}
		w.mu.Lock()
		w.log = append(w.log, msg{unit, k, m.Payload(), m.Retained(), time.Now()})
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("watcher subscribe: %v", tok.Error())
	}
	return w
}

// messages returns what unit received on kind so far.
func (w *watcher) messages(unit string, k telemetry.Kind) []msg {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []msg
	for _, m := range w.log {
		if m.unit == unit && m.kind == k {
			out = append(out, m)
		}
	}
	return out
}

// await polls until ok holds, failing the test after timeout.
func await(tb testing.TB, what string, timeout time.Duration, ok func() bool) {
	tb.Helper()
	for end := time.Now().Add(timeout); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// send publishes a command to unit's cmd topic.
func send(tb testing.TB, w *watcher, unit string, c telemetry.Command) {
	tb.Helper()
	b, err := telemetry.EncodeCommand(c)
	if err != nil {
		tb.Fatal(err)
	}
	if tok := w.c.Publish(telemetry.Topic(unit, telemetry.KindCmd), 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Fatalf("send command: %v", tok.Error())
	}
}

// forget removes what the broker keeps of units after the test: their
// retained presence and the persistent sessions of their terminals.
func forget(tb testing.TB, url, prefix string, units ...string) {
	tb.Helper()
	tb.Cleanup(func() {
		for _, u := range units {
			c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(prefix + u).SetCleanSession(true))
			if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				tb.Errorf("clean up %s: %v", u, tok.Error())
				continue
			}
			c.Publish(telemetry.Topic(u, telemetry.KindOnline), 1, true, []byte{}).WaitTimeout(5 * time.Second)
			c.Disconnect(100)
		}
	})
}

// statuses renders unit's acks and status presses in order of arrival.
func statuses(tb testing.TB, w *watcher, unit string) []string {
	tb.Helper()
	w.mu.Lock()
	log := slices.Clone(w.log)
	w.mu.Unlock()
	var out []string
	for _, m := range log {
		if m.unit != unit {
			continue
		}
		switch m.kind {
		case telemetry.KindAck:
			a, err := telemetry.DecodeAck(unit, m.payload, m.at)
			if err != nil {
				tb.Fatalf("ack %s: %v", m.payload, err)
			}
			out = append(out, fmt.Sprintf("ack:%s:%t:%s", a.Assignment, a.Accepted, a.Reason))
		case telemetry.KindStatus:
			s, err := telemetry.DecodeStatus(unit, m.payload, m.at)
			if err != nil {
				tb.Fatalf("status %s: %v", m.payload, err)
			}
			if s.Time.IsZero() || !strings.Contains(string(m.payload), `"ts"`) {
				tb.Errorf("status %s has no ts", m.payload)
			}
			out = append(out, "status:"+s.Status+":"+s.Incident)
		}
	}
	return out
}

func TestFleet(t *testing.T) {
	before := goleak.IgnoreCurrent()
	url := brokerURL(t)
	sfx := suffix(t)
	units := []string{"SIM-" + sfx + "-1", "SIM-" + sfx + "-2", "SIM-" + sfx + "-3"}
	homes := []orb.Point{station, offset(station, 1500, 0), offset(station, 0, 1500)}
	hosp := offset(station, -1500, 500)
	w := World{Hospitals: []orb.Point{hosp}}
	for i, u := range units {
		w.Units = append(w.Units, UnitSpec{ID: u, Home: homes[i]})
	}
	const prefix = "fleetsim-test-"
	forget(t, url, prefix, units...)
	watcher := watch(t, url, units...)

	cfg := Config{
		URL: url, Interval: 100 * time.Millisecond, VideoEvery: 300 * time.Millisecond,
		Speedup: 600, MaxSpeedKmh: -1, Seed: 7, ClientPrefix: prefix,
	}
	fleet := New(w, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fleet.Run(ctx) }()

	t.Run("reports", func(t *testing.T) {
		for _, u := range units {
			await(t, u+" gps and video", 10*time.Second, func() bool {
				return len(watcher.messages(u, telemetry.KindGPS)) >= 5 && len(watcher.messages(u, telemetry.KindVideo)) >= 2
			})
			var seq uint64
			for _, m := range watcher.messages(u, telemetry.KindGPS) {
				fixes, err := telemetry.DecodeFixes(u, m.payload, m.at)
				if err != nil {
					t.Fatalf("gps %s: %v", m.payload, err)
				}
				for _, f := range fixes {
					if f.Seq <= seq {
						t.Errorf("%s: seq %d after %d", u, f.Seq, seq)
					}
					seq = f.Seq
					if !geo.ValidLatLon(f.Lat, f.Lon) || f.Time.Location() != time.UTC || m.at.Sub(f.Time).Abs() > 5*time.Second ||
						f.HDOP <= 0 || f.Sats < 4 || f.Heading < 0 || f.Heading >= 360 {
						t.Errorf("%s: implausible fix %+v received at %v", u, f, m.at)
					}
				}
			}
			for _, m := range watcher.messages(u, telemetry.KindVideo) {
				v, err := telemetry.DecodeVideo(u, m.payload, m.at)
				if err != nil || v.Uplink == "" || len(v.Cameras) == 0 {
					t.Errorf("video %s: %+v, %v", m.payload, v, err)
				}
			}
		}
	})

	t.Run("retained online", func(t *testing.T) {
		late := watch(t, url, units...) // a newcomer gets the retained presence
		for _, u := range units {
			await(t, u+" retained online", 5*time.Second, func() bool {
				for _, m := range late.messages(u, telemetry.KindOnline) {
					if p, err := telemetry.DecodePresence(u, m.payload, m.at); err == nil && p.Online && m.retained {
						return true
					}
				}
				return false
			})
		}
	})

	t.Run("assignment", func(t *testing.T) {
		u := units[0]
		scene, dest := offset(station, 800, 600), offset(station, -1000, 1200)
		send(t, watcher, u, assignCmd(t, "ASG-"+sfx+"-1", "INC-"+sfx+"-1", scene, &dest))
		await(t, "first ack", 5*time.Second, func() bool { return len(watcher.messages(u, telemetry.KindAck)) > 0 })
		send(t, watcher, u, assignCmd(t, "ASG-"+sfx+"-2", "INC-"+sfx+"-2", scene, nil))
		await(t, "the call to finish", 20*time.Second, func() bool {
			return slices.Contains(statuses(t, watcher, u), "status:available:INC-"+sfx+"-1")
		})
		inc := "INC-" + sfx + "-1"
		want := []string{"ack:ASG-" + sfx + "-1:true:", "ack:ASG-" + sfx + "-2:false:busy", "status:en_route:" + inc,
			"status:on_scene:" + inc, "status:transporting:" + inc, "status:at_hospital:" + inc, "status:available:" + inc}
		// The busy ack races the en_route press; the rest is in order.
		got := statuses(t, watcher, u)
		var acks, presses []string
		for _, s := range got {
			if strings.HasPrefix(s, "ack:") {
				acks = append(acks, s)
			} else {
				presses = append(presses, s)
			}
		}
		if len(got) == 0 || got[0] != want[0] || !slices.Equal(acks, want[:2]) || !slices.Equal(presses, want[2:]) {
			t.Fatalf("unit %s reported %q, want %q", u, got, want)
		}
		near := func(p orb.Point) bool {
			for _, m := range watcher.messages(u, telemetry.KindGPS) {
				fixes, _ := telemetry.DecodeFixes(u, m.payload, m.at)
				for _, f := range fixes {
					if geo.Distance(f.Point(), p) < 150 {
						return true
					}
				}
			}
			return false
		}
		if !near(scene) || !near(dest) {
			t.Errorf("unit %s was near the scene %t, near the destination %t; want both", u, near(scene), near(dest))
		}
	})

	t.Run("cancel", func(t *testing.T) {
		u, asg, inc := units[1], "ASG-"+sfx+"-3", "INC-"+sfx+"-3"
		send(t, watcher, u, assignCmd(t, asg, inc, offset(station, 9000, 9000), nil))
		await(t, "en_route", 5*time.Second, func() bool { return slices.Contains(statuses(t, watcher, u), "status:en_route:"+inc) })
		send(t, watcher, u, telemetry.Command{Type: telemetry.CommandCancel, Assignment: asg})
		await(t, "available", 5*time.Second, func() bool { return slices.Contains(statuses(t, watcher, u), "status:available:"+inc) })
		if got, want := statuses(t, watcher, u), []string{"ack:" + asg + ":true:", "status:en_route:" + inc, "status:available:" + inc}; !slices.Equal(got, want) {
			t.Errorf("unit %s reported %q, want %q", u, got, want)
		}
	})

	t.Run("stop", func(t *testing.T) {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run() = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		for _, u := range units {
			await(t, u+" offline", 5*time.Second, func() bool {
				ms := watcher.messages(u, telemetry.KindOnline)
				if len(ms) == 0 {
					return false
				}
				p, err := telemetry.DecodePresence(u, ms[len(ms)-1].payload, time.Now())
				return err == nil && !p.Online
			})
		}
		time.Sleep(300 * time.Millisecond) // for anything published after it to arrive
		watcher.mu.Lock()
		log := slices.Clone(watcher.log)
		watcher.mu.Unlock()
		offline := map[string]bool{}
		for _, m := range log {
			switch {
			case m.kind == telemetry.KindOnline:
				p, err := telemetry.DecodePresence(m.unit, m.payload, m.at)
				offline[m.unit] = err == nil && !p.Online
			case offline[m.unit]:
				t.Errorf("%s published %s %s after its offline", m.unit, m.kind, m.payload)
			}
		}
		s := fleet.Stats()
		if s.Fixes == 0 || s.Messages <= s.Fixes || s.Commands != 4 || s.Acks != 3 || s.Errors != 0 {
			t.Errorf("Stats() = %v, want fixes, messages, 4 commands, 3 acks, no errors", s)
		}
	})
	watcher.c.Disconnect(0)
	goleak.VerifyNone(t, before)
}

func TestFleetBatch(t *testing.T) {
	url := brokerURL(t)
	u := "SIM-" + suffix(t) + "-B"
	const prefix = "fleetsim-test-"
	forget(t, url, prefix, u)
	watcher := watch(t, url, u)
	var creds []string
	cfg := Config{
		URL: url, Interval: 20 * time.Millisecond, Batch: 4, Speedup: 50, Wander: true, ClientPrefix: prefix,
		Credentials: func(unit string) (string, string) { creds = append(creds, unit); return unit, "secret" },
	}
	fleet := New(World{Units: []UnitSpec{{ID: u, Home: station}}}, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fleet.Run(ctx) }()
	await(t, "three batches", 10*time.Second, func() bool { return len(watcher.messages(u, telemetry.KindGPS)) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	for i, m := range watcher.messages(u, telemetry.KindGPS) {
		fixes, err := telemetry.DecodeFixes(u, m.payload, m.at)
		if err != nil {
			t.Fatal(err)
		}
		if len(fixes) != 4 || !strings.HasPrefix(string(m.payload), "[") {
			t.Errorf("message %d has %d fixes (%.40s...), want a batch of 4", i, len(fixes), m.payload)
		}
	}
	if !slices.Equal(creds, []string{u}) {
		t.Errorf("credentials asked for %q, want %q", creds, u)
	}
}

// TestFleetAcked: Config.Acked sees every message the broker acknowledged,
// once, and the gps fixes it sees are the ones Stats counts.
func TestFleetAcked(t *testing.T) {
	url := brokerURL(t)
	u := "SIM-" + suffix(t) + "-A"
	const prefix = "fleetsim-test-"
	forget(t, url, prefix, u)
	watcher := watch(t, url, u)
	var mu sync.Mutex
	var acked []msg
	cfg := Config{
		URL: url, Interval: 20 * time.Millisecond, Batch: 2, Speedup: 50, ClientPrefix: prefix,
		Acked: func(unit string, k telemetry.Kind, payload []byte) {
			mu.Lock()
			defer mu.Unlock()
			acked = append(acked, msg{unit: unit, kind: k, payload: payload})
		},
	}
	fleet := New(World{Units: []UnitSpec{{ID: u, Home: station}}}, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fleet.Run(ctx) }()
	await(t, "three gps messages", 10*time.Second, func() bool { return len(watcher.messages(u, telemetry.KindGPS)) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var seen map[string]int
	await(t, "every acked message at the watcher", 5*time.Second, func() bool {
		seen = map[string]int{}
		for _, m := range watcher.messages(u, telemetry.KindGPS) {
			seen[string(m.payload)]++
		}
		for _, m := range acked {
			if m.kind == telemetry.KindGPS && seen[string(m.payload)] == 0 {
				return false
			}
		}
		return true
	})
	fixes, gps := 0, 0
	for _, m := range acked {
		if m.unit != u {
			t.Fatalf("acked a message of %q, want %q", m.unit, u)
		}
		if m.kind != telemetry.KindGPS {
			continue
		}
		gps++
		fs, err := telemetry.DecodeFixes(u, m.payload, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		fixes += len(fs)
		if seen[string(m.payload)] != 1 {
			t.Errorf("acked gps message %.60s reached the broker's subscribers %d times, want once", m.payload, seen[string(m.payload)])
		}
	}
	if gps == 0 || uint64(fixes) != fleet.Stats().Fixes {
		t.Fatalf("acked %d gps messages with %d fixes; Stats counts %d fixes", gps, fixes, fleet.Stats().Fixes)
	}
}

func TestFleetRunErrors(t *testing.T) {
	before := goleak.IgnoreCurrent()
	tests := []struct {
		name  string
		world World
		cfg   Config
	}{
		{"no broker URL", World{Units: []UnitSpec{{ID: "A1"}}}, Config{}},
		{"invalid unit id", World{Units: []UnitSpec{{ID: "A/1"}}}, Config{URL: "tcp://127.0.0.1:1"}},
		{"repeated unit id", World{Units: []UnitSpec{{ID: "A1"}, {ID: "A1"}}}, Config{URL: "tcp://127.0.0.1:1"}},
		{"unreachable broker", World{Units: []UnitSpec{{ID: "A1", Home: station}}}, Config{URL: "tcp://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(tt.world, tt.cfg, nil).Run(context.Background())
			if err == nil {
				t.Fatal("Run() = nil, want an error")
			}
		})
	}
	goleak.VerifyNone(t, before)
}
