package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the baseline hub too, as the harness
// runs its own executable with "hub" for it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "hub" {
		if err := runHub(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "benchpeers hub:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuick runs every pair at toy sizes against the real lifelined,
// Mosquitto, Redis and PostgreSQL, so that the harness cannot rot. Only
// Tile38 may be missing: then its rows are skipped and the report says so.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lifelined several times")
	}
	cfg, err := parseConfig([]string{"-quick", "-sizes", "50", "-calls", "4", "-terminals", "4", "-consoles", "4",
		"-duration", "300ms", "-warmup", "100ms", "-step", "300ms"}, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, cfg, &stdout, &stderr)
	report := stdout.String()
	t.Logf("progress:\n%s\nreport:\n%s", stderr.String(), report)
	if code != 0 {
		t.Fatalf("run() = %d, want 0", code)
	}
	for _, want := range []string{
		"| decode one GPS fix |",
		"| served nearest unit, 32 clients, 50 units |",
		"| MQTT ingest, one fix per message, QoS 1, 4 terminals |",
		"| MQTT ingest, 100 fixes per message |",
		"| websocket fan-out, 4 consoles |",
		"| fix → console latency, 4 consoles, 52 fixes/s |",
		"| 50 | ceiling: Lifeline /livez |",
		"| 50 | Redis |",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report has no %q", want)
		}
	}
	if _, err := findBinary(cfg.tile38, "tile38-server"); err != nil {
		if !strings.Contains(report, "Tile38 not found: skipped") || !strings.Contains(report, "tile38-server not found") {
			t.Errorf("without tile38-server the report must say its rows were skipped")
		}
	} else if !strings.Contains(report, "| 50 | Tile38 |") {
		t.Errorf("report has no Tile38 row, though tile38-server is at hand")
	}
}

func TestParseConfig(t *testing.T) {
	env := func(string) string { return "" }
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"quick", []string{"-quick"}, true},
		{"unknown pair", []string{"-pairs", "served,teleport"}, false},
		{"bad size", []string{"-sizes", "10,x"}, false},
		{"no rounds", []string{"-rounds", "0"}, false},
		{"stray argument", []string{"now"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, env)
			if got := err == nil; got != tt.ok {
				t.Errorf("parseConfig(%q) error = %v, want ok %v", tt.args, err, tt.ok)
			}
		})
	}
	cfg, _ := parseConfig([]string{"-quick", "-rounds", "2"}, env)
	if cfg.rounds != 2 || cfg.sizes[0] != 200 {
		t.Errorf("-quick -rounds 2: rounds %d, sizes %v; want 2 (the flag wins) and [200]", cfg.rounds, cfg.sizes)
	}
	if cfg, _ := parseConfig(nil, func(k string) string { return map[string]string{"TILE38_SERVER": "/opt/t38"}[k] }); cfg.tile38 != "/opt/t38" {
		t.Errorf("tile38 = %q, want $TILE38_SERVER", cfg.tile38)
	}
}
