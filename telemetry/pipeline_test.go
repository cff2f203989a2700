package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// units is a Registry of a fixed set of units.
type units map[string]bool

func (u units) Known(unit string) bool { return u[unit] }

// sink is a Sink that records what it receives and fails with err.
type sink struct {
	mu        sync.Mutex
	err       error
	positions []Positions
	videos    []Video
	statuses  []Status
	acks      []Ack
	presences []Presence
}

var _ Sink = (*sink)(nil)

func (s *sink) Positions(_ context.Context, p Positions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.positions = append(s.positions, p)
	}
	return s.err
}

func (s *sink) Video(_ context.Context, v Video) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.videos = append(s.videos, v)
	}
	return s.err
}

func (s *sink) Status(_ context.Context, st Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.statuses = append(s.statuses, st)
	}
	return s.err
}

func (s *sink) Ack(_ context.Context, a Ack) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.acks = append(s.acks, a)
	}
	return s.err
}

func (s *sink) Presence(_ context.Context, p Presence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.presences = append(s.presences, p)
	}
	return s.err
}

func (s *sink) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.positions) + len(s.videos) + len(s.statuses) + len(s.acks) + len(s.presences)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// harness is a Pipeline with fakes around it.
type harness struct {
	*Pipeline
	sink    *sink
	v       *Validator
	metrics *Metrics
	clock   *fakeClock
	logs    *bytes.Buffer
}

func newHarness(tb testing.TB, l Limits) *harness {
	tb.Helper()
	h := &harness{sink: &sink{}, metrics: NewMetrics(nil), clock: &fakeClock{t: t0}, logs: &bytes.Buffer{}}
	h.v = NewValidator(l, h.clock.Now)
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, nil))
	h.Pipeline = NewPipeline(units{"A1": true, "A2": true}, h.v, h.sink, h.metrics, logger, h.clock.Now)
	return h
}

// lockedWriter serialises writes to a buffer shared by goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) handle(tb testing.TB, topic, payload string) {
	tb.Helper()
	if err := h.Handle(context.Background(), topic, []byte(payload)); err != nil {
		tb.Fatalf("Handle(%s, %s): %v", topic, payload, err)
	}
}

func gpsPayload(seq uint64, at time.Duration, lat, lon float64) string {
	return string(EncodeFixes(Fix{Seq: seq, Time: t0.Add(at), Lat: lat, Lon: lon}))
}

func TestPipelineRejects(t *testing.T) {
	good := gpsPayload(1, -time.Second, lat0, lon0)
	tests := []struct {
		name    string
		seed    *Fix
		topic   string
		payload string
		kind    Kind
		reason  Reason
	}{
		{name: "not ours", topic: "city/v1/units/A1/gps", payload: good, kind: KindGPS, reason: BadTopic},
		{name: "no kind", topic: "ems/v1/units/A1", payload: good, kind: KindUnknown, reason: BadTopic},
		{name: "unknown kind", topic: "ems/v1/units/A1/temperature", payload: `{}`, kind: KindUnknown, reason: BadTopic},
		{name: "extra level", topic: "ems/v1/units/A1/gps/raw", payload: good, kind: KindUnknown, reason: BadTopic},
		{name: "bad unit id", topic: "ems/v1/units/A 1/gps", payload: good, kind: KindGPS, reason: BadTopic},
		{name: "empty topic", topic: "", payload: good, kind: KindUnknown, reason: BadTopic},
		{name: "payload too large", topic: "ems/v1/units/A1/gps", payload: good + strings.Repeat(" ", 1024), kind: KindGPS, reason: TooLarge},
		{name: "unknown unit", topic: "ems/v1/units/B9/gps", payload: good, kind: KindGPS, reason: UnknownUnit},
		{name: "unknown unit status", topic: "ems/v1/units/B9/status", payload: `{"status":"en_route"}`, kind: KindStatus, reason: UnknownUnit},
		{name: "gps malformed", topic: "ems/v1/units/A1/gps", payload: `{"seq":1`, kind: KindGPS, reason: Malformed},
		{name: "gps ts out of range", topic: "ems/v1/units/A1/gps", payload: `{"seq":1,"ts":1e30,"lat":29,"lon":104}`, kind: KindGPS, reason: OutOfRange},
		{name: "gps out of range", topic: "ems/v1/units/A1/gps", payload: gpsPayload(1, 0, 91, lon0), kind: KindGPS, reason: OutOfRange},
		{name: "gps null island", topic: "ems/v1/units/A1/gps", payload: gpsPayload(1, 0, 0, 0), kind: KindGPS, reason: OutOfRange},
		{name: "gps future", topic: "ems/v1/units/A1/gps", payload: gpsPayload(1, time.Hour, lat0, lon0), kind: KindGPS, reason: Future},
		{name: "gps too old", topic: "ems/v1/units/A1/gps", payload: gpsPayload(1, -73*time.Hour, lat0, lon0), kind: KindGPS, reason: TooOld},
		{name: "gps batch too large", topic: "ems/v1/units/A1/gps", kind: KindGPS, reason: TooLarge,
			payload: string(EncodeFixes(fx(1, -3*time.Second, 0), fx(2, -2*time.Second, 0), fx(3, -time.Second, 0)))},
		{name: "gps duplicate", seed: ptr(fx(1, -time.Second, 0)), topic: "ems/v1/units/A1/gps", payload: good, kind: KindGPS, reason: DuplicateSeq},
		{name: "gps impossible jump", seed: ptr(fx(1, -time.Second, 0)), topic: "ems/v1/units/A1/gps", payload: gpsPayload(2, 0, 30.5, lon0), kind: KindGPS, reason: ImpossibleJump},
		{name: "video malformed", topic: "ems/v1/units/A1/video", payload: `{"uplink":"wifi"}`, kind: KindVideo, reason: Malformed},
		{name: "status unknown", topic: "ems/v1/units/A1/status", payload: `{"status":"lunch"}`, kind: KindStatus, reason: Malformed},
		{name: "status too old", topic: "ems/v1/units/A1/status", payload: `{"status":"en_route","ts":"2026-11-01T08:00:00Z"}`, kind: KindStatus, reason: TooOld},
		{name: "video too old", topic: "ems/v1/units/A1/video", payload: `{"ts":1000}`, kind: KindVideo, reason: TooOld},
		{name: "ack missing accepted", topic: "ems/v1/units/A1/ack", payload: `{"assignment":"ASG-1"}`, kind: KindAck, reason: Malformed},
		{name: "presence unknown", topic: "ems/v1/units/A1/online", payload: `maybe`, kind: KindOnline, reason: Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Limits{MaxPayload: 1024, MaxBatch: 2})
			if tt.seed != nil {
				h.v.Seed(*tt.seed)
			}
			h.handle(t, tt.topic, tt.payload)
			if got := h.metrics.Rejected(tt.kind, tt.reason); got != 1 {
				t.Errorf("Rejected(%s, %s) = %v, want 1", tt.kind, tt.reason, got)
			}
			if got := h.metrics.Messages(tt.kind); got != 1 {
				t.Errorf("Messages(%s) = %v, want 1", tt.kind, got)
			}
			if n := h.sink.calls(); n != 0 {
				t.Errorf("sink got %d reports, want none", n)
			}
			if got := h.metrics.Fixes(); got != 0 {
				t.Errorf("Fixes() = %v, want 0", got)
			}
			if got, want := h.logs.String(), "reason="+string(tt.reason); !strings.Contains(got, want) {
				t.Errorf("log %q does not contain %q", got, want)
			}
		})
	}
}

func TestPipelineDelivers(t *testing.T) {
	h := newHarness(t, DefaultLimits)
	h.handle(t, "ems/v1/units/A1/gps", gpsPayload(1, -time.Second, lat0, lon0))
	h.handle(t, "ems/v1/units/A1/video", `{"ts":"2026-11-23T08:00:00Z","uplink":"5g","cameras":[{"ch":1,"state":"streaming","bitrate_kbps":1800}]}`)
	h.handle(t, "ems/v1/units/A1/status", `{"status":"en_route","incident":"INC-1"}`)
	h.handle(t, "ems/v1/units/A1/ack", `{"assignment":"ASG-1","accepted":true,"reason":""}`)
	h.handle(t, "ems/v1/units/A1/online", `"offline"`)
	h.handle(t, "ems/v1/units/A1/cmd", `{"type":"assign","assignment":"ASG-1"}`)
	h.handle(t, "ems/v1/units/B9/cmd", `not even json`)

	want := Fix{Unit: "A1", Seq: 1, Time: t0.Add(-time.Second), Lat: lat0, Lon: lon0, Received: t0}
	if len(h.sink.positions) != 1 || len(h.sink.positions[0].Fixes) != 1 || !sameFix(h.sink.positions[0].Fixes[0], want) ||
		h.sink.positions[0].Latest == nil || h.sink.positions[0].Unit != "A1" {
		t.Errorf("positions: got %+v, want one with fix %+v as Latest", h.sink.positions, want)
	}
	if len(h.sink.videos) != 1 || h.sink.videos[0].Uplink != Uplink5G || len(h.sink.videos[0].Cameras) != 1 {
		t.Errorf("videos: got %+v", h.sink.videos)
	}
	if want := (Status{Unit: "A1", Time: t0, Status: StatusEnRoute, Incident: "INC-1"}); len(h.sink.statuses) != 1 || h.sink.statuses[0] != want {
		t.Errorf("statuses: got %+v, want [%+v]", h.sink.statuses, want)
	}
	if want := (Ack{Unit: "A1", Time: t0, Assignment: "ASG-1", Accepted: true}); len(h.sink.acks) != 1 || h.sink.acks[0] != want {
		t.Errorf("acks: got %+v, want [%+v]", h.sink.acks, want)
	}
	if want := (Presence{Unit: "A1", Time: t0}); len(h.sink.presences) != 1 || h.sink.presences[0] != want {
		t.Errorf("presences: got %+v, want [%+v]", h.sink.presences, want)
	}
	for _, k := range []Kind{KindGPS, KindVideo, KindStatus, KindAck, KindOnline} {
		if got := h.metrics.Messages(k); got != 1 {
			t.Errorf("Messages(%s) = %v, want 1", k, got)
		}
	}
	if got := h.metrics.Messages(KindCmd); got != 0 {
		t.Errorf("Messages(cmd) = %v, want 0: cmd topics are ignored", got)
	}
	if got := h.metrics.Fixes(); got != 1 {
		t.Errorf("Fixes() = %v, want 1", got)
	}
	if h.logs.Len() != 0 {
		t.Errorf("logged %q, want nothing", h.logs)
	}
}

func TestPipelineFutureReportTime(t *testing.T) {
	h := newHarness(t, DefaultLimits)
	h.handle(t, "ems/v1/units/A1/status", `{"status":"on_scene","ts":"2026-11-23T09:00:00Z"}`)
	h.handle(t, "ems/v1/units/A1/status", `{"status":"transporting","ts":"2026-11-23T08:00:30Z"}`)
	h.handle(t, "ems/v1/units/A1/video", `{"ts":"2026-11-23T09:00:00Z","uplink":"4g"}`)
	if len(h.sink.statuses) != 2 || !h.sink.statuses[0].Time.Equal(t0) || !h.sink.statuses[1].Time.Equal(t0.Add(30*time.Second)) {
		t.Errorf("statuses: got %+v, want the first at the received time %v, the second at its own (within skew)", h.sink.statuses, t0)
	}
	if len(h.sink.videos) != 1 || !h.sink.videos[0].Time.Equal(t0) {
		t.Errorf("videos: got %+v, want one at the received time %v", h.sink.videos, t0)
	}
}

func TestPipelinePartialBatch(t *testing.T) {
	h := newHarness(t, DefaultLimits)
	payload := EncodeFixes(fx(1, -4*time.Second, 0), at(fx(2, -3*time.Second, 0), 91, 0), fx(3, -2*time.Second, 10),
		fx(4, time.Hour, 0), at(fx(5, -time.Second, 0), 0, 0))
	h.handle(t, "ems/v1/units/A1/gps", string(payload))
	if len(h.sink.positions) != 1 {
		t.Fatalf("sink got %d positions, want 1", len(h.sink.positions))
	}
	pos := h.sink.positions[0]
	checkPositions(t, pos, nil, []uint64{1, 3}, 3, nil)
	for _, tt := range []struct {
		reason Reason
		want   float64
	}{{OutOfRange, 2}, {Future, 1}} {
		if got := h.metrics.Rejected(KindGPS, tt.reason); got != tt.want {
			t.Errorf("Rejected(gps, %s) = %v, want %v", tt.reason, got, tt.want)
		}
	}
	if got := h.metrics.Fixes(); got != 2 {
		t.Errorf("Fixes() = %v, want 2", got)
	}
	if got := h.logs.String(); !strings.Contains(got, "rejected=3") {
		t.Errorf("log %q: want one line with rejected=3", got)
	}
}

func TestPipelineSinkError(t *testing.T) {
	errDown := errors.New("store down")
	tests := []struct {
		topic   string
		payload string
	}{
		{"ems/v1/units/A1/gps", gpsPayload(1, -time.Second, lat0, lon0)},
		{"ems/v1/units/A1/video", `{"uplink":"4g"}`},
		{"ems/v1/units/A1/status", `{"status":"on_scene"}`},
		{"ems/v1/units/A1/ack", `{"assignment":"ASG-1","accepted":false}`},
		{"ems/v1/units/A1/online", `online`},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			h := newHarness(t, DefaultLimits)
			h.sink.err = errDown
			err := h.Handle(context.Background(), tt.topic, []byte(tt.payload))
			if !errors.Is(err, errDown) {
				t.Fatalf("Handle with a failing sink: got %v, want %v", err, errDown)
			}
			var r *Rejection
			if errors.As(err, &r) {
				t.Errorf("sink error %v is a *Rejection", err)
			}
			// The broker redelivers; the sink is back.
			h.sink.err = nil
			h.handle(t, tt.topic, tt.payload)
			if n := h.sink.calls(); n != 1 {
				t.Errorf("after redelivery: sink got %d reports, want 1", n)
			}
			if got := h.metrics.Rejected(KindGPS, DuplicateSeq); got != 0 {
				t.Errorf("Rejected(gps, duplicate_seq) = %v, want 0: the failed delivery must not count as seen", got)
			}
		})
	}
	t.Run("failed positions do not move the unit", func(t *testing.T) {
		h := newHarness(t, DefaultLimits)
		h.handle(t, "ems/v1/units/A1/gps", gpsPayload(1, -2*time.Second, lat0, lon0))
		h.sink.err = errDown
		if err := h.Handle(context.Background(), "ems/v1/units/A1/gps", []byte(gpsPayload(2, -time.Second, lat0+0.001, lon0))); err == nil {
			t.Fatal("Handle with a failing sink: got nil error")
		}
		if live, _ := h.v.Live("A1"); live.Seq != 1 {
			t.Errorf("live seq: got %d, want 1", live.Seq)
		}
		if got := h.metrics.Fixes(); got != 1 {
			t.Errorf("Fixes() = %v, want 1", got)
		}
	})
}

func TestPipelineLogRateLimit(t *testing.T) {
	h := newHarness(t, DefaultLimits)
	bad := func(unit string, n int) {
		for range n {
			h.handle(t, "ems/v1/units/"+unit+"/gps", `{"seq":`)
		}
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(h.logs.String()), "\n") }

	bad("A1", 5)
	bad("A2", 2)
	if got := lines(); len(got) != 2 || !strings.Contains(got[0], "unit=A1") || !strings.Contains(got[1], "unit=A2") {
		t.Fatalf("first minute: got log lines %q, want one for A1 and one for A2", got)
	}
	if strings.Contains(h.logs.String(), "suppressed") {
		t.Errorf("first lines %q mention suppressed", h.logs)
	}
	h.clock.Add(59 * time.Second)
	bad("A1", 1)
	if got := lines(); len(got) != 2 {
		t.Fatalf("within the minute: got %d log lines, want 2", len(got))
	}
	h.clock.Add(time.Second)
	bad("A1", 1)
	got := lines()
	if len(got) != 3 || !strings.Contains(got[2], "unit=A1") || !strings.Contains(got[2], "suppressed=5") {
		t.Fatalf("after a minute: got log lines %q, want a third for A1 with suppressed=5", got)
	}
	if got := h.metrics.Rejected(KindGPS, Malformed); got != 9 {
		t.Errorf("Rejected(gps, malformed) = %v, want 9: every message counts, logged or not", got)
	}
}

func TestLogLimiterBounded(t *testing.T) {
	l := logLimiter{every: time.Minute, max: 10}
	for i := range 100 {
		l.allow(strconv.Itoa(i), t0)
	}
	if len(l.keys) > 11 {
		t.Errorf("limiter holds %d keys, want at most 11", len(l.keys))
	}
	if ok, _ := l.allow("fresh", t0.Add(2*time.Minute)); !ok {
		t.Error("new key after the window: got not allowed")
	}
	if len(l.keys) > 11 {
		t.Errorf("limiter holds %d keys after a sweep, want at most 11", len(l.keys))
	}
}

func TestMetricsNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	p := NewPipeline(units{"A1": true}, nil, &sink{}, m, nil, clock)
	for _, msg := range []struct{ topic, payload string }{
		{"ems/v1/units/A1/gps", gpsPayload(1, -time.Second, lat0, lon0)},
		{"ems/v1/units/A1/gps", gpsPayload(1, -time.Second, lat0, lon0)},
	} {
		if err := p.Handle(context.Background(), msg.topic, []byte(msg.payload)); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	want := []string{"lifeline_telemetry_fixes_total", "lifeline_telemetry_handle_seconds", "lifeline_telemetry_messages_total", "lifeline_telemetry_rejected_total"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metric names: got %v, want %v", got, want)
	}
	if got := m.Rejected(KindGPS, DuplicateSeq); got != 1 {
		t.Errorf("Rejected(gps, duplicate_seq) = %v, want 1", got)
	}
}

func TestPipelineConcurrent(t *testing.T) {
	h := newHarness(t, DefaultLimits)
	var wg sync.WaitGroup
	for _, unit := range []string{"A1", "A2"} {
		for g := range 4 {
			wg.Go(func() {
				for i := range 100 {
					seq := uint64(i*4 + g + 1)
					payload := gpsPayload(seq, -time.Hour+time.Duration(seq)*time.Second, lat0, lon0)
					if err := h.Handle(context.Background(), "ems/v1/units/"+unit+"/gps", []byte(payload)); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	if got := h.metrics.Fixes(); got != 800 {
		t.Errorf("Fixes() = %v, want 800", got)
	}
	// Latest never goes back in time for a unit, whatever the interleaving.
	last := map[string]time.Time{}
	for _, p := range h.sink.positions {
		if p.Latest == nil {
			continue
		}
		if p.Latest.Time.Before(last[p.Unit]) {
			t.Errorf("unit %s: Latest went back from %v to %v", p.Unit, last[p.Unit], p.Latest.Time)
		}
		last[p.Unit] = p.Latest.Time
	}
}

func FuzzPipelineHandle(f *testing.F) {
	for _, s := range []struct{ topic, payload string }{
		{"ems/v1/units/A1/gps", `{"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11,"crs":"wgs84"}`},
		{"ems/v1/units/A1/gps", `[{"seq":1,"ts":1795420799000,"lat":29.18,"lon":104.97,"crs":"gcj02"},{"seq":2,"ts":1795420800000,"lat":91,"lon":0}]`},
		{"ems/v1/units/A1/gps", `{"seq":3,"ts":"2026-11-23T09:00:00Z","lat":0,"lon":0}`},
		{"ems/v1/units/A1/video", `{"ts":"2026-11-23T08:00:01Z","uplink":"5g","cameras":[{"ch":1,"state":"streaming","bitrate_kbps":1800}]}`},
		{"ems/v1/units/A1/status", `{"ts":"2026-11-23T08:00:01Z","status":"en_route","incident":"INC-1"}`},
		{"ems/v1/units/A1/ack", `{"assignment":"ASG-1","accepted":true,"reason":""}`},
		{"ems/v1/units/A1/online", `"online"`},
		{"ems/v1/units/A1/cmd", `{"type":"assign"}`},
		{"ems/v1/units/B9/gps", `{}`},
		{"ems/v1/units//gps", ``},
		{"/", `[`},
	} {
		f.Add(s.topic, []byte(s.payload))
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		fs := &fuzzSink{t: t, latest: t0.Add(DefaultLimits.MaxFuture)}
		v := NewValidator(DefaultLimits, clock)
		v.Seed(Fix{Unit: "A2", Seq: 100, Time: t0.Add(-time.Minute), Lat: lat0, Lon: lon0})
		p := NewPipeline(units{"A1": true, "A2": true}, v, fs, nil, nil, clock)
		if err := p.Handle(context.Background(), topic, payload); err != nil {
			t.Fatalf("Handle(%q, %q) with a healthy sink: %v", topic, payload, err)
		}
		// The same message again (a redelivery) must be as harmless.
		if err := p.Handle(context.Background(), topic, payload); err != nil {
			t.Fatalf("Handle again: %v", err)
		}
	})
}

// fuzzSink checks the invariants of what reaches a Sink.
type fuzzSink struct {
	t      *testing.T
	latest time.Time // no report may be later than this
}

func (s *fuzzSink) Positions(_ context.Context, p Positions) error {
	if len(p.Fixes) == 0 {
		s.t.Fatal("empty Positions reached the sink")
	}
	for _, f := range p.Fixes {
		if !validCoord(f.Lat, f.Lon) || f.Time.After(s.latest) || f.Unit != p.Unit {
			s.t.Fatalf("bad fix reached the sink: %+v", f)
		}
	}
	if p.Latest != nil && !slicesContainsFix(p.Fixes, *p.Latest) {
		s.t.Fatalf("Latest %+v not among Fixes", *p.Latest)
	}
	return nil
}

func slicesContainsFix(fixes []Fix, f Fix) bool {
	for _, g := range fixes {
		if sameFix(f, g) {
			return true
		}
	}
	return false
}

func (s *fuzzSink) Video(_ context.Context, v Video) error {
	if v.Time.After(s.latest) {
		s.t.Fatalf("future video reached the sink: %+v", v)
	}
	return nil
}

func (s *fuzzSink) Status(_ context.Context, st Status) error {
	if st.Time.After(s.latest) || !ValidStatus(st.Status) {
		s.t.Fatalf("bad status reached the sink: %+v", st)
	}
	return nil
}

func (s *fuzzSink) Ack(_ context.Context, a Ack) error {
	if a.Assignment == "" {
		s.t.Fatalf("ack without assignment reached the sink: %+v", a)
	}
	return nil
}

func (s *fuzzSink) Presence(context.Context, Presence) error { return nil }

// BenchmarkPipelineHandle handles single-fix gps messages from 1000 units
// in turn, each a new seq one second after the unit's last.
func BenchmarkPipelineHandle(b *testing.B) {
	const n = 1000
	reg := units{}
	payloads := make([][]byte, n)
	topics := make([]string, n)
	for i := range n {
		unit := fmt.Sprintf("U%04d", i)
		reg[unit] = true
		topics[i] = Topic(unit, KindGPS)
		// Room for seq and ts, padded with spaces that JSON ignores.
		payloads[i] = fmt.Appendf(nil, `{"seq":%-20d,"ts":%-20d,"lat":%.6f,"lon":%.6f,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11}`,
			0, 0, lat0+float64(i%100)*0.01, lon0+float64(i/100)*0.01)
	}
	seqAt := bytes.Index(payloads[0], []byte(`"seq":`)) + len(`"seq":`)
	tsAt := bytes.Index(payloads[0], []byte(`"ts":`)) + len(`"ts":`)
	put := func(b []byte, at int, v int64) {
		copy(b[at:at+20], "                    ")
		strconv.AppendInt(b[at:at], v, 10)
	}
	start := t0.Add(-48 * time.Hour).UnixMilli()
	p := NewPipeline(reg, NewValidator(DefaultLimits, clock), nopSink{}, NewMetrics(nil), nil, clock)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u, round := i%n, int64(i/n)
		put(payloads[u], seqAt, round+1)
		put(payloads[u], tsAt, start+round*1000)
		if err := p.Handle(ctx, topics[u], payloads[u]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	if got := p.metrics.Fixes(); got != float64(i) {
		b.Fatalf("accepted %v fixes of %d", got, i)
	}
}

type nopSink struct{}

func (nopSink) Positions(context.Context, Positions) error { return nil }
func (nopSink) Video(context.Context, Video) error         { return nil }
func (nopSink) Status(context.Context, Status) error       { return nil }
func (nopSink) Ack(context.Context, Ack) error             { return nil }
func (nopSink) Presence(context.Context, Presence) error   { return nil }
