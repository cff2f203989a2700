package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// ingest is pairs 2 and 3: terminals publishing GPS at QoS 1 as fast as
// they are acknowledged, one fix per message and 100 per message. Lifeline
// takes them on its embedded broker, each terminal signed in with the
// credentials Lifeline issued, and acknowledges a message once its fixes
// are stored (SQLite, PostgreSQL); the baseline is the same publishers
// through Mosquitto to one subscriber that decodes every fix. Lifeline's
// rate is acknowledged messages, the baseline's the messages its
// subscriber decoded.
func (h *harness) ingest(ctx context.Context) error {
	sec := h.section("ingest", "MQTT ingest",
		fmt.Sprintf("%d terminals, each with up to %d QoS 1 messages unacknowledged, %s per side per round after %s of warm-up. "+
			"Lifeline: its embedded broker, terminals signed in with the credentials it issued, a PUBACK only once stored; "+
			"per-terminal rate limit off (`--mqtt-unit-rate 0`). Baseline: the same publisher code through Mosquitto to one paho "+
			"subscriber, a process of its own (`benchpeers hub -decode-only`), that decodes every fix with `telemetry.DecodeFixes`; "+
			"its rate is what that subscriber decoded.",
			h.cfg.terminals, h.cfg.inflight, h.cfg.duration, h.cfg.warmup))
	sec.header = []string{"fixes per message", "side", "messages/s", "fixes/s", "PUBACK p50", "PUBACK p99", "Lifeline on SQLite ÷ this"}
	mosq, err := h.mosquitto(ctx)
	if err != nil {
		return err
	}
	f := newFleet(h.cfg.seed, h.cfg.terminals, 0)
	area, err := f.writeArea(h.dir)
	if err != nil {
		return err
	}
	type target struct {
		name   string
		broker string
		creds  map[string]string
		state  *terminals
		stored func() int64 // fixes decoded by the baseline's subscriber
	}
	var targets []*target
	var servers []*lifeline
	defer func() {
		for _, l := range servers {
			l.p.stop()
		}
	}()
	startL := func(name, pg string) error {
		h.progress("ingest: starting lifelined on %s", name)
		l, err := startLifeline(ctx, lifelineOpts{bin: h.bin, area: area, dataDir: h.tempDir("ingest"), postgresURL: pg, log: h.childLog})
		if err != nil {
			return err
		}
		servers = append(servers, l)
		creds, err := l.credentials(ctx, f.ids)
		if err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		targets = append(targets, &target{name: "Lifeline, " + name, broker: l.mqttURL, creds: creds, state: newTerminals(f)})
		return nil
	}
	if err := startL("SQLite", ""); err != nil {
		return err
	}
	if h.cfg.postgres == "" {
		sec.notef("Lifeline on PostgreSQL: skipped (-postgres \"\").")
	} else if pg, drop, err := postgresDatabase(ctx, h.cfg.postgres); err != nil {
		sec.notef("Lifeline on PostgreSQL: skipped, PostgreSQL not reachable at %s: %v.", redact(h.cfg.postgres), err)
	} else {
		defer drop()
		if err := startL("PostgreSQL", pg); err != nil {
			return err
		}
	}
	// The baseline's subscriber is a process of its own, as lifelined is.
	sub, err := startHub(ctx, "tcp://"+mosq.addr, true, h.childLog)
	if err != nil {
		return err
	}
	defer sub.stop()
	var countErr atomic.Pointer[error]
	decoded := func() int64 {
		n, err := hubCount(sub.addr)
		if err != nil {
			countErr.CompareAndSwap(nil, &err)
		}
		return n
	}
	targets = append(targets, &target{name: "Mosquitto + decoding subscriber", broker: "tcp://" + mosq.addr, state: newTerminals(f), stored: decoded})

	for _, batch := range []int{1, 100} {
		var sides []side
		for _, t := range targets {
			sides = append(sides, side{name: t.name, run: func(ctx context.Context) (measure, error) {
				return h.publishRound(ctx, t.broker, t.creds, t.state, batch, t.stored)
			}})
		}
		res, err := h.rounds(ctx, fmt.Sprintf("ingest, %d fixes/message", batch), sides)
		if err != nil {
			return err
		}
		if e := countErr.Load(); e != nil {
			return fmt.Errorf("reading the subscriber's count: %w", *e)
		}
		sqlite := res[targets[0].name]
		for _, t := range targets {
			m := res[t.name]
			vs := ""
			if t != targets[0] {
				vs = ratio(sqlite.Rate, m.Rate)
			}
			sec.row(fmt.Sprint(batch), t.name, rate(m.Extra["messages/s"]), rate(m.Rate), ms(m.P50), ms(m.P99), vs)
			if m.Errors > 0 {
				sec.notef("%d fixes per message, %s: %d messages not acknowledged in the median round (first: %s).", batch, t.name, m.Errors, m.FirstErr)
			}
		}
		base := res[targets[len(targets)-1].name]
		var life, ratios []string
		for _, t := range targets[:len(targets)-1] {
			m := res[t.name]
			store := strings.TrimPrefix(t.name, "Lifeline, ")
			if batch == 1 {
				life = append(life, fmt.Sprintf("%s msg/s (%s)", rate(m.Extra["messages/s"]), store))
			} else {
				life = append(life, fmt.Sprintf("%s fixes/s (%s)", rate(m.Rate), store))
			}
			ratios = append(ratios, fmt.Sprintf("%s (%s)", ratio(m.Rate, base.Rate), store))
		}
		if batch == 1 {
			h.summary(fmt.Sprintf("MQTT ingest, one fix per message, QoS 1, %s terminals", count(h.cfg.terminals)), strings.Join(life, ", "),
				fmt.Sprintf("paho → Mosquitto → one decoding subscriber: %s msg/s", rate(base.Extra["messages/s"])), strings.Join(ratios, ", "), "")
		} else {
			h.summary("MQTT ingest, 100 fixes per message", strings.Join(life, ", "),
				fmt.Sprintf("%s fixes/s", rate(base.Rate)), strings.Join(ratios, ", "), "")
		}
	}
	return nil
}

// terminals is the state of a fleet's terminals toward one server: the
// next sequence number and fix time of each, kept across rounds so that
// nothing is ever a replay.
type terminals struct {
	f    *fleet
	seq  []uint64
	base time.Time
	sent int64 // fixes published
}

func newTerminals(f *fleet) *terminals {
	return &terminals{f: f, seq: make([]uint64, len(f.ids)), base: time.Now().UTC().Add(-time.Hour)}
}

// fixes returns unit i's next n fixes: 10 ms apart from an hour ago, at
// its place.
func (t *terminals) fixes(i, n int) []byte {
	fs := make([]telemetry.Fix, n)
	p := t.f.points[i]
	for k := range fs {
		t.seq[i]++
		fs[k] = telemetry.Fix{Seq: t.seq[i], Time: t.base.Add(time.Duration(t.seq[i]) * 10 * time.Millisecond), Lat: p[1], Lon: p[0], Sats: 9, HDOP: 0.9}
	}
	return telemetry.EncodeFixes(fs...)
}

// publishRound connects every terminal to broker (as its unit, with
// creds when given), publishes batch fixes a message for warm-up and
// duration, and measures the messages acknowledged in the window, or,
// when decoded is given, the fixes it counts in the window.
func (h *harness) publishRound(ctx context.Context, broker string, creds map[string]string, t *terminals, batch int, decoded func() int64) (measure, error) {
	ids := t.f.ids
	clients := make([]paho.Client, len(ids))
	err := parallel(ctx, 16, len(ids), func(i int) error {
		c, err := connect(broker, ids[i], ids[i], creds[ids[i]])
		clients[i] = c
		return err
	})
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Disconnect(0)
			}
		}
	}()
	if err != nil {
		return measure{}, err
	}
	var (
		measuring atomic.Bool
		acked     atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		errs      int
		firstErr  string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			type sent struct {
				tok paho.Token
				at  time.Time
				in  bool // sent while measuring
			}
			q := make(chan sent, h.cfg.inflight)
			done := make(chan struct{})
			var mine []time.Duration
			go func() {
				defer close(done)
				for s := range q {
					ok := s.tok.WaitTimeout(60*time.Second) && s.tok.Error() == nil
					if !measuring.Load() {
						continue
					}
					if !ok {
						mu.Lock()
						errs++
						if firstErr == "" {
							if err := s.tok.Error(); err != nil {
								firstErr = err.Error()
							} else {
								firstErr = "no PUBACK within 60 s"
							}
						}
						mu.Unlock()
						continue
					}
					acked.Add(1)
					if s.in {
						mine = append(mine, time.Since(s.at))
					}
				}
			}()
			topic := telemetry.Topic(ids[i], telemetry.KindGPS)
		loop:
			for {
				select {
				case <-stop:
					break loop
				default:
				}
				payload := t.fixes(i, batch)
				q <- sent{tok: c.Publish(topic, 1, false, payload), at: time.Now(), in: measuring.Load()}
			}
			close(q)
			<-done
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	sleep(ctx, h.cfg.warmup)
	a0 := acked.Load()
	var d0 int64
	if decoded != nil {
		d0 = decoded()
	}
	t0 := time.Now()
	measuring.Store(true)
	sleep(ctx, h.cfg.duration)
	a1 := acked.Load()
	var d1 int64
	if decoded != nil {
		d1 = decoded()
	}
	elapsed := time.Since(t0)
	measuring.Store(false)
	close(stop)
	wg.Wait()
	if decoded != nil {
		// Let the subscriber finish the backlog, so that it does not
		// decode through the next side's measurement.
		last := decoded()
		_ = waitUntil(ctx, nil, 2*time.Minute, "a quiet subscriber", func() bool {
			time.Sleep(500 * time.Millisecond)
			now := decoded()
			quiet := now == last
			last = now
			return quiet
		})
	}
	if err := ctx.Err(); err != nil {
		return measure{}, err
	}
	msgs := float64(a1-a0) / elapsed.Seconds()
	m := measure{Errors: errs, FirstErr: firstErr, Extra: map[string]float64{}}
	if decoded != nil {
		m.Rate = float64(d1-d0) / elapsed.Seconds()
		m.Extra["messages/s"] = m.Rate / float64(batch)
	} else {
		m.Rate = msgs * float64(batch)
		m.Extra["messages/s"] = msgs
	}
	m.latencies(lat)
	return m, nil
}

// redact hides the password in a URL for messages.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 {
			if k := strings.Index(u[i+3:i+3+j], ":"); k >= 0 {
				return u[:i+3+k+1] + "xxx" + u[i+3+j:]
			}
		}
	}
	return u
}
