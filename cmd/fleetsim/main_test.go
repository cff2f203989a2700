package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// areaFile writes a small area with two units of ids prefix-1 and
// prefix-2 and returns its path.
func areaFile(tb testing.TB, prefix string) string {
	tb.Helper()
	const area = `{"type":"FeatureCollection","lifeline":{"version":1,"name":"fleetsim test"},"features":[
{"type":"Feature","properties":{"kind":"jurisdiction","id":"510300","name":"自贡市"},"geometry":null},
{"type":"Feature","properties":{"kind":"jurisdiction","id":"510322","name":"富顺县","parent":"510300"},
 "geometry":{"type":"Polygon","coordinates":[[[104.90,29.10],[105.10,29.10],[105.10,29.30],[104.90,29.30],[104.90,29.10]]]}},
{"type":"Feature","properties":{"kind":"station","id":"ST-A","name":"A","jurisdiction":"510322","station_kind":"county_hospital"},
 "geometry":{"type":"Point","coordinates":[104.9772,29.1868]}},
{"type":"Feature","properties":{"kind":"hospital","id":"HP-A","name":"A","jurisdiction":"510322","level":"secondary","centres":["trauma"]},
 "geometry":{"type":"Point","coordinates":[104.9772,29.1868]}},
{"type":"Feature","properties":{"kind":"unit","id":"%[1]s-1","callsign":"1","station":"ST-A","jurisdiction":"510322","capabilities":["als"]},"geometry":null},
{"type":"Feature","properties":{"kind":"unit","id":"%[1]s-2","callsign":"2","jurisdiction":"510322","capabilities":["bls"]},"geometry":null}
]}`
	path := filepath.Join(tb.TempDir(), "area.geojson")
	if err := os.WriteFile(path, fmt.Appendf(nil, area, prefix), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestRun(t *testing.T) {
	before := goleak.IgnoreCurrent()
	// CI guarantees a broker, so an unreachable one fails the test rather
	// than skipping it.
	url := cmp.Or(os.Getenv("LIFELINE_TEST_MQTT_URL"), "tcp://127.0.0.1:1883")
	run36 := strconv.FormatInt(time.Now().UnixNano(), 36) // keeps parallel runs apart
	id := "CMD-" + run36
	units := []string{id + "-1", id + "-2"}
	const clientPrefix = "fleetsim-cmdtest-"
	t.Cleanup(func() { // what the broker keeps of the units: presence and sessions
		for _, u := range units {
			c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(clientPrefix + u).SetCleanSession(true))
			if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
				c.Publish(telemetry.Topic(u, telemetry.KindOnline), 1, true, []byte{}).WaitTimeout(5 * time.Second)
				c.Disconnect(100)
			}
		}
	})

	var mu sync.Mutex
	got := map[string][]string{} // unit -> kinds received, in order
	w := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fleetsim-cmdwatch-" + run36).SetConnectTimeout(3 * time.Second))
	if tok := w.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("no MQTT broker at %s (%v): start Mosquitto on 127.0.0.1:1883 or set LIFELINE_TEST_MQTT_URL", url, tok.Error())
	}
	filters := map[string]byte{}
	for _, u := range units {
		filters[telemetry.Prefix+u+"/+"] = 1
	}
	tok := w.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		unit, k, err := telemetry.ParseTopic(m.Topic())
		if err != nil {
			return
		}
		if k == telemetry.KindGPS {
			if _, err := telemetry.DecodeFixes(unit, m.Payload(), time.Now()); err != nil {
				t.Errorf("gps %s: %v", m.Payload(), err)
			}
		}
		mu.Lock()
		got[unit] = append(got[unit], string(k)+":"+string(m.Payload()))
		mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher: %v", tok.Error())
	}

	var stdout, stderr bytes.Buffer
	args := []string{"--mqtt-url", url, "--area", areaFile(t, id), "--duration", "2s", "--interval", "200ms",
		"--speedup", "20", "--client-prefix", clientPrefix, "--seed", "3"}
	start := time.Now()
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run(%q) = %v; stderr:\n%s", args, err, stderr.String())
	}
	if d := time.Since(start); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("run took %v, want about 2s", d)
	}
	m := regexp.MustCompile(`^fixes=(\d+) messages=(\d+) commands=0 acks=0 errors=0\n$`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("stdout = %q, want the fleet's stats", stdout.String())
	}
	if fixes, _ := strconv.Atoi(m[1]); fixes < 2*5 {
		t.Errorf("%d fixes sent by 2 units in 2s at 200ms, want 10 or more", fixes)
	}
	time.Sleep(200 * time.Millisecond)
	w.Disconnect(0)
	mu.Lock()
	defer mu.Unlock()
	for _, u := range units {
		kinds := got[u]
		if len(kinds) < 3 || kinds[0] != `online:"online"` || kinds[len(kinds)-1] != `online:"offline"` ||
			!strings.HasPrefix(strings.Join(kinds, "\n"), `online:"online"`+"\ngps:") {
			t.Errorf("unit %s published %d messages: first %q, last %q; want online, gps ..., offline",
				u, len(kinds), kinds[:min(2, len(kinds))], kinds[max(0, len(kinds)-1):])
		}
	}
	goleak.VerifyNone(t, before)
}

func TestRunErrors(t *testing.T) {
	path := areaFile(t, "E")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined"},
		{"stray argument", []string{"units"}, nil, "unexpected arguments"},
		{"negative units", []string{"--units", "-1"}, nil, "--units -1"},
		{"more units than the area", []string{"--area", path, "--units", "3"}, nil, "has 2 units"},
		{"missing area file", []string{"--area", filepath.Join(t.TempDir(), "none.geojson")}, nil, "no such file"},
		{"zero interval", []string{"--interval", "0s"}, nil, "--interval"},
		{"bad speedup", []string{"--speedup", "0"}, nil, "--speedup"},
		{"bad batch", []string{"--batch", "0"}, nil, "--batch"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"bad environment", nil, map[string]string{"LIFELINE_INTERVAL": "often"}, "LIFELINE_INTERVAL"},
		{"environment sets units", []string{"--area", path}, map[string]string{"LIFELINE_UNITS": "5"}, "--units 5"},
		{"unreachable broker", []string{"--mqtt-url", "tcp://127.0.0.1:1", "--units", "1"}, nil, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantURL string
		wantN   int
		wander  bool
	}{
		{"defaults", nil, nil, "tcp://127.0.0.1:1883", 0, true},
		{"flags", []string{"--mqtt-url", "tcp://b:1883", "--units", "3", "--wander=false"}, nil, "tcp://b:1883", 3, false},
		{"environment", nil, map[string]string{"LIFELINE_MQTT_URL": "tcp://e:1883", "LIFELINE_UNITS": "4", "LIFELINE_WANDER": "false"}, "tcp://e:1883", 4, false},
		{"flag wins", []string{"--units", "2"}, map[string]string{"LIFELINE_UNITS": "4"}, "tcp://127.0.0.1:1883", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			url := fs.String("mqtt-url", "tcp://127.0.0.1:1883", "")
			n := fs.Int("units", 0, "")
			wander := fs.Bool("wander", true, "")
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			if err := parse(fs, tt.args, lookup); err != nil {
				t.Fatal(err)
			}
			if *url != tt.wantURL || *n != tt.wantN || *wander != tt.wander {
				t.Errorf("parsed %q, %d, %t; want %q, %d, %t", *url, *n, *wander, tt.wantURL, tt.wantN, tt.wander)
			}
		})
	}
}
