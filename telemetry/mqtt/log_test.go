package mqtt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func TestLibLogNoPayload(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newLibLog(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	secret := strings.Repeat("PAYLOAD", 1000)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "ems/v1/units/U2/gps",
		PacketID: 7, Payload: []byte(secret)}
	connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{Username: []byte("U1"), Password: []byte("hunter2-password")}}
	log.Warn("error processing packet", "error", packets.ErrNotAuthorized, "client", "U1", "pk", pk)
	log.Debug("packet rejected", "packet", &pk)
	log.Debug("connect", "pk", connect)
	log.Warn("long", "client", "U1", "topic", strings.Repeat("t", 10_000), "raw", []byte(secret))
	out := buf.String()
	for _, s := range []string{"PAYLOAD", "hunter2", strings.Repeat("t", maxLogText+1)} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %.20q:\n%s", s, out)
		}
	}
	for _, s := range []string{`payload_bytes=7000`, `ems/v1/units/U2/gps`, `raw_bytes=7000`, `(10000 bytes)`} {
		if !strings.Contains(out, s) {
			t.Errorf("the log lacks %q:\n%s", s, out)
		}
	}
}

func TestLibLogLimited(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newLibLog(slog.NewTextHandler(&buf, nil)))
	for range 1000 {
		log.Warn("error processing packet", "error", packets.ErrNotAuthorized, "client", "U1")
		log.Warn("error processing packet", "error", packets.ErrNotAuthorized, "client", "U2")
	}
	log.Warn("error processing packet", "error", packets.ErrPacketTooLarge, "client", "U1")
	if n := strings.Count(buf.String(), "\n"); n != 2*libLogsPerKey+1 {
		t.Fatalf("%d lines for 2001, want %d per client and reason:\n%s", n, libLogsPerKey, buf.String())
	}
}

func TestPenalties(t *testing.T) {
	p := newPenalties()
	now := time.Unix(1_800_000_000, 0)
	var got []time.Duration
	for range 8 {
		got = append(got, p.offend("U1", now))
		now = now.Add(time.Second)
	}
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("penalties %v, want %v", got, want)
		}
	}
	if d := p.serving("U1", now); d != 15*time.Second {
		t.Errorf("serving %v, want 15s", d)
	}
	if d := p.serving("U2", now); d != 0 {
		t.Errorf("another client serves %v", d)
	}
	for range 30 {
		p.offend("U1", now)
	}
	if d := p.serving("U1", now); d != penaltyMax {
		t.Errorf("serving %v after many offences, want the cap %v", d, penaltyMax)
	}
	now = now.Add(penaltyQuiet + time.Second)
	if d := p.offend("U1", now); d != 0 || p.serving("U1", now) != 0 {
		t.Errorf("after %v of quiet: penalty %v, want a fresh start", penaltyQuiet, d)
	}
}
