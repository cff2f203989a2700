package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// liveTarget is a websocket feed of unit updates fed by fixes published
// to a mosquitto of its own: Lifeline's /api/v1/live, or the baseline hub.
// Each side has its broker so that neither sees the other's fixes.
type liveTarget struct {
	name    string
	broker  string // tcp://...
	url     string // ws://...
	header  http.Header
	t       *terminals              // the fixes sent toward it, across rounds
	handled func() (float64, error) // fixes it has taken from the broker
}

// liveTargets starts a lifelined and the baseline hub for a fleet of n
// units, each fed by its own mosquitto, and returns both feeds and a
// function that stops them.
func (h *harness) liveTargets(ctx context.Context, n int) ([]*liveTarget, func(), error) {
	mosq, err := h.mosquitto(ctx)
	if err != nil {
		return nil, nil, err
	}
	bin, _ := findBinary(h.cfg.mosquitto, "mosquitto", "/usr/sbin/mosquitto")
	mosq2, err := startMosquitto(ctx, bin, h.tempDir("mosquitto"), h.childLog)
	if err != nil {
		return nil, nil, err
	}
	f := newFleet(h.cfg.seed, n, 0)
	area, err := f.writeArea(h.dir)
	if err != nil {
		return nil, nil, err
	}
	h.progress("live, %d units: starting lifelined (ingest from mosquitto) and the baseline hub", n)
	l, err := startLifeline(ctx, lifelineOpts{bin: h.bin, area: area, dataDir: h.tempDir("live"), externalMQTT: "tcp://" + mosq.addr, log: h.childLog})
	if err != nil {
		return nil, nil, err
	}
	hub, err := startHub(ctx, "tcp://"+mosq2.addr, false, h.childLog)
	if err != nil {
		l.p.stop()
		mosq2.stop()
		return nil, nil, err
	}
	stop := func() { l.p.stop(); hub.stop(); mosq2.stop() }
	return []*liveTarget{
		{name: "Lifeline /api/v1/live", broker: "tcp://" + mosq.addr, url: "ws" + strings.TrimPrefix(l.base, "http") + "/api/v1/live",
			header: http.Header{"Authorization": {"Bearer " + l.token}}, t: newLiveTerminals(f),
			handled: func() (float64, error) { return l.gpsMessages(ctx) }},
		{name: "gorilla hub, each event encoded once", broker: "tcp://" + mosq2.addr, url: "ws://" + hub.addr + "/live", t: newLiveTerminals(f),
			handled: func() (float64, error) { n, err := hubCount(hub.addr); return float64(n), err }},
	}, stop, nil
}

// open connects n consoles to t's feed (every sampleEvery-th timing what
// it gets, 0 for none) and a publisher to its broker.
func (t *liveTarget) open(ctx context.Context, n, sampleEvery int) (*consoles, *ratePublisher, func(), error) {
	cs, err := dialConsoles(ctx, n, t.url, t.header, sampleEvery)
	if err != nil {
		return nil, nil, nil, err
	}
	pub, err := newRatePublisher(t.broker, t.t)
	if err != nil {
		cs.close()
		return nil, nil, nil, err
	}
	return cs, pub, func() { pub.close(); cs.close() }, nil
}

// drain waits until t has taken every fix sent to it, so that a round
// that fell behind does not spill into the next.
func (h *harness) drain(ctx context.Context, t *liveTarget) error {
	want := float64(t.t.sent)
	var got float64
	var err error
	werr := waitUntil(ctx, nil, 3*time.Minute, fmt.Sprintf("%s: all %.0f fixes taken", t.name, want), func() bool {
		got, err = t.handled()
		return err != nil || got >= want
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("%w (took %.0f)", werr, got)
	}
	return nil
}

// newLiveTerminals is terminals whose fixes carry the time they are sent.
func newLiveTerminals(f *fleet) *terminals { return &terminals{f: f, seq: make([]uint64, len(f.ids))} }

// fanout is pair 5: how many unit updates a second reach 1,000 consoles
// before the feed falls behind. The rate of fixes steps up by a quarter
// each step; a step passes when the consoles got at least 95% of the
// updates sent during it and none was dropped. The result is the
// deliveries a second of the last step that passed.
func (h *harness) fanout(ctx context.Context) error {
	units := max(1000, h.cfg.consoles)
	sec := h.section("fanout", "Websocket fan-out",
		fmt.Sprintf("%d consoles, fixes of %d units published to Mosquitto at rising rates, %s a step; deliveries/s of the fastest step in which every console "+
			"got at least 95%% of the updates and none was dropped. Lifeline ingests the fixes from Mosquitto (`--mqtt-url`) and serves `/api/v1/live`; "+
			"the baseline is a gorilla websocket hub in this harness (`benchpeers hub`, its own process) subscribed to a Mosquitto of its own, encoding each update once "+
			"(Lifeline's own `unit` message, `dispatch.Event`, as a `websocket.PreparedMessage`) and dropping a console whose 1,024-message queue is full, as Lifeline does.", h.cfg.consoles, units, h.stepDuration()))
	sec.header = []string{"side", "deliveries/s at saturation", "fixes/s", "Lifeline ÷ this"}
	targets, stop, err := h.liveTargets(ctx, units)
	if err != nil {
		return err
	}
	defer stop()
	startRate := map[string]float64{}
	var sides []side
	for _, t := range targets {
		sides = append(sides, side{name: t.name, run: func(ctx context.Context) (measure, error) {
			m, err := h.sweep(ctx, t, startRate[t.name])
			if err == nil {
				startRate[t.name] = m.Extra["fixes/s"] / (1.25 * 1.25 * 1.25)
			}
			return m, err
		}})
	}
	res, err := h.rounds(ctx, "fan-out", sides)
	if err != nil {
		return err
	}
	life, base := res[targets[0].name], res[targets[1].name]
	for _, t := range targets {
		m := res[t.name]
		vs := ""
		if t != targets[0] {
			vs = ratio(life.Rate, m.Rate)
		}
		sec.row(t.name, rate(m.Rate), rate(m.Extra["fixes/s"]), vs)
	}
	h.summary(fmt.Sprintf("websocket fan-out, %s consoles", count(h.cfg.consoles)),
		fmt.Sprintf("saturates near %s deliveries/s", rate(life.Rate)),
		fmt.Sprintf("gorilla hub encoding each event once: %s/s", rate(base.Rate)), ratio(life.Rate, base.Rate), "")
	return nil
}

func (h *harness) stepDuration() time.Duration { return h.cfg.step }

// sweep raises the rate of fixes step by step until the consoles of t fall
// behind, and returns the deliveries a second of the last step they kept
// up with.
func (h *harness) sweep(ctx context.Context, t *liveTarget, from float64) (measure, error) {
	cs, pub, closeFn, err := t.open(ctx, h.cfg.consoles, 0)
	if err != nil {
		return measure{}, err
	}
	defer closeFn()
	r := max(from, 10)
	best := measure{Extra: map[string]float64{"fixes/s": 0}}
	steps := 40
	if h.cfg.quick {
		steps = 3 // a smoke test: that it runs, not where it saturates
	}
	for step := 0; step < steps && ctx.Err() == nil; step++ {
		d0, c0 := cs.delivered.Load(), cs.ended.Load()
		t0 := time.Now()
		sent, err := pub.run(ctx, r, h.stepDuration())
		if err != nil {
			return measure{}, err
		}
		// Deliveries of the last updates may still be on their way.
		sleep(ctx, 200*time.Millisecond)
		elapsed := time.Since(t0)
		got := cs.delivered.Load() - d0
		want := sent * int64(h.cfg.consoles)
		if cs.ended.Load() > c0 || float64(got) < 0.95*float64(want) {
			break
		}
		best = measure{Rate: float64(got) / elapsed.Seconds(), Extra: map[string]float64{"fixes/s": float64(sent) / h.stepDuration().Seconds()}}
		r *= 1.25
	}
	if err := h.drain(ctx, t); err != nil {
		return measure{}, err
	}
	if best.Rate == 0 {
		return best, fmt.Errorf("the consoles did not keep up even with %.0f fixes/s", max(from, 10))
	}
	return best, nil
}

// latency is pair 6: the time from a fix's publication to its arrival at
// the consoles, at a steady rate: 52 fixes/s to 1,000 consoles, and
// issue 9's target shape, 10,000 units each reporting every 2 s to 200
// consoles.
func (h *harness) latency(ctx context.Context) error {
	sec := h.section("latency", "Fix → console latency",
		fmt.Sprintf("From the fix's time (set when it is published, to the millisecond) to its arrival at a console, measured on every tenth console, %s per side per round "+
			"after %s of warm-up; same setup as the fan-out pair. A side that cannot keep up shows it as the share of updates delivered in the window.", h.cfg.duration, h.cfg.warmup))
	sec.header = []string{"shape", "side", "p50", "p99", "delivered", "consoles dropped", "Lifeline p99 ÷ this"}
	type shape struct {
		name     string
		units    int
		consoles int
		rate     float64
	}
	shapes := []shape{
		{fmt.Sprintf("%s consoles, 52 fixes/s", count(h.cfg.consoles)), max(1000, h.cfg.consoles), h.cfg.consoles, 52},
		{"10,000 units every 2 s, 200 consoles", 10_000, 200, 5000},
	}
	if h.cfg.quick {
		shapes[1] = shape{fmt.Sprintf("200 units every 2 s, %d consoles", h.cfg.consoles), 200, h.cfg.consoles, 100}
	}
	for _, sh := range shapes {
		targets, stop, err := h.liveTargets(ctx, sh.units)
		if err != nil {
			return err
		}
		var sides []side
		for _, t := range targets {
			sides = append(sides, side{name: t.name, run: func(ctx context.Context) (measure, error) {
				return h.steady(ctx, t, sh.consoles, sh.rate)
			}})
		}
		res, err := h.rounds(ctx, "latency, "+sh.name, sides)
		stop()
		if err != nil {
			return err
		}
		life := res[targets[0].name]
		for _, t := range targets {
			m := res[t.name]
			vs := ""
			if t != targets[0] {
				vs = ratio(float64(life.P99), float64(m.P99))
			}
			sec.row(sh.name, t.name, ms(m.P50), ms(m.P99), fmt.Sprintf("%.1f%%", m.Extra["delivered %"]), fmt.Sprint(m.Extra["dropped"]), vs)
		}
		base := res[targets[1].name]
		h.summary(fmt.Sprintf("fix → console latency, %s", sh.name),
			fmt.Sprintf("p50 %s, p99 %s (%.1f%% delivered)", ms(life.P50), ms(life.P99), life.Extra["delivered %"]),
			fmt.Sprintf("p50 %s, p99 %s (%.1f%% delivered)", ms(base.P50), ms(base.P99), base.Extra["delivered %"]),
			fmt.Sprintf("p50 %s, p99 %s (latency: above 1 is slower)", ratio(float64(life.P50), float64(base.P50)), ratio(float64(life.P99), float64(base.P99))), "")
	}
	return nil
}

// steady publishes at rate to consoles of t for warm-up and duration and
// measures the latency of what arrives in the window.
func (h *harness) steady(ctx context.Context, t *liveTarget, consoles int, rate float64) (measure, error) {
	cs, pub, closeFn, err := t.open(ctx, consoles, 10)
	if err != nil {
		return measure{}, err
	}
	defer closeFn()
	if _, err := pub.run(ctx, rate, h.cfg.warmup); err != nil {
		return measure{}, err
	}
	d0, e0 := cs.delivered.Load(), cs.ended.Load()
	cs.mu.Lock()
	cs.lat = cs.lat[:0]
	cs.mu.Unlock()
	cs.sampling.Store(true)
	sent, err := pub.run(ctx, rate, h.cfg.duration)
	if err != nil {
		return measure{}, err
	}
	sleep(ctx, time.Second) // the last ones on their way
	cs.sampling.Store(false)
	got := cs.delivered.Load() - d0
	m := measure{Rate: float64(got) / h.cfg.duration.Seconds(), Extra: map[string]float64{
		"delivered %": 100 * float64(got) / float64(max(1, sent*int64(consoles))),
		"dropped":     float64(cs.ended.Load() - e0),
	}}
	cs.mu.Lock()
	m.latencies(cs.lat)
	cs.mu.Unlock()
	return m, h.drain(ctx, t)
}

// consoles are websocket clients of a live feed that count the unit
// updates they receive, and some of which time them.
type consoles struct {
	conns     []*websocket.Conn
	delivered atomic.Int64 // unit updates received
	ended     atomic.Int64 // consoles whose feed ended
	sampling  atomic.Bool
	wg        sync.WaitGroup

	mu  sync.Mutex
	lat []time.Duration
}

// dialConsoles connects n consoles and waits for each one's first message
// (the snapshot); every sampleEvery-th console times the updates (0: none).
func dialConsoles(ctx context.Context, n int, url string, header http.Header, sampleEvery int) (*consoles, error) {
	cs := &consoles{conns: make([]*websocket.Conn, n)}
	d := websocket.Dialer{HandshakeTimeout: 60 * time.Second, ReadBufferSize: 64 << 10}
	err := parallel(ctx, 16, n, func(i int) error {
		c, resp, err := d.DialContext(ctx, url, header)
		if err != nil {
			if resp != nil {
				return fmt.Errorf("console %d: %s: %w", i, resp.Status, err)
			}
			return fmt.Errorf("console %d: %w", i, err)
		}
		c.SetReadLimit(1 << 30)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		if _, _, err := c.ReadMessage(); err != nil {
			c.Close()
			return fmt.Errorf("console %d: no snapshot: %w", i, err)
		}
		_ = c.SetReadDeadline(time.Time{})
		cs.conns[i] = c
		return nil
	})
	if err != nil {
		cs.close()
		return nil, err
	}
	for i, c := range cs.conns {
		sample := sampleEvery > 0 && i%sampleEvery == 0
		cs.wg.Go(func() { cs.read(c, sample) })
	}
	return cs, nil
}

var (
	unitType    = []byte(`"type":"unit"`)
	positionKey = []byte(`"position":{`)
	tsKey       = []byte(`"ts":"`)
)

// read counts a console's unit updates until its connection ends.
func (cs *consoles) read(c *websocket.Conn, sample bool) {
	defer cs.ended.Add(1)
	var buf bytes.Buffer
	for {
		_, r, err := c.NextReader()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return
		}
		msg := buf.Bytes()
		if !bytes.Contains(msg[:min(len(msg), 40)], unitType) {
			continue
		}
		cs.delivered.Add(1)
		if !sample || !cs.sampling.Load() {
			continue
		}
		now := time.Now()
		if i := bytes.Index(msg, positionKey); i >= 0 {
			rest := msg[i:]
			if j := bytes.Index(rest, tsKey); j >= 0 {
				rest = rest[j+len(tsKey):]
				if k := bytes.IndexByte(rest, '"'); k >= 0 {
					if ts, err := time.Parse(time.RFC3339Nano, string(rest[:k])); err == nil {
						cs.mu.Lock()
						cs.lat = append(cs.lat, now.Sub(ts))
						cs.mu.Unlock()
					}
				}
			}
		}
	}
}

// close ends every console and waits for its reader.
func (cs *consoles) close() {
	for _, c := range cs.conns {
		if c != nil {
			c.Close()
		}
	}
	cs.wg.Wait()
}

// ratePublisher publishes fixes of a fleet's units in turn at a steady
// rate through a few paho clients, each fix timed when it is sent.
type ratePublisher struct {
	clients []paho.Client
	t       *terminals
	next    int
}

func newRatePublisher(broker string, t *terminals) (*ratePublisher, error) {
	p := &ratePublisher{t: t}
	for i := range 4 {
		c, err := connect(broker, fmt.Sprintf("benchpeers-pub-%d-%s", i, randomHex(3)), "", "")
		if err != nil {
			p.close()
			return nil, err
		}
		p.clients = append(p.clients, c)
	}
	return p, nil
}

func (p *ratePublisher) close() {
	for _, c := range p.clients {
		c.Disconnect(100)
	}
}

// run publishes rate fixes a second for d and returns how many it sent;
// they are all acknowledged by the broker when it returns.
func (p *ratePublisher) run(ctx context.Context, rate float64, d time.Duration) (int64, error) {
	wins := make([]*window, len(p.clients))
	for i := range wins {
		wins[i] = newWindow(512, nil)
	}
	const tick = 5 * time.Millisecond
	t0 := time.Now()
	var sent int64
	for ctx.Err() == nil {
		elapsed := time.Since(t0)
		if elapsed >= d {
			break
		}
		for due := int64(rate * elapsed.Seconds()); sent < due; sent++ {
			i := p.next % len(p.t.f.ids)
			p.next++
			p.t.seq[i]++
			p.t.sent++
			pt := p.t.f.points[i]
			fix := telemetry.Fix{Seq: p.t.seq[i], Time: time.Now().UTC(), Lat: pt[1], Lon: pt[0], Sats: 9, HDOP: 0.9}
			k := i % len(p.clients)
			wins[k].publish(p.clients[k], telemetry.Topic(p.t.f.ids[i], telemetry.KindGPS), telemetry.EncodeFixes(fix))
		}
		time.Sleep(tick)
	}
	var errs []error
	for _, w := range wins {
		errs = append(errs, w.close())
	}
	return sent, errors.Join(append(errs, ctx.Err())...)
}
