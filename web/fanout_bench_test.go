package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/web"
)

// The fan-out benchmarks drive the live feed from in-process websocket
// consoles over loopback, against a minimal gorilla hub in the same run:
// the anchor, which encodes each event once and writes it to
// every console as a frame of its own (the hub of gorilla's chat
// example, its broadcast and the consoles' queues blocking instead of
// dropping, so that no console is lost and the hub runs at the pace of
// its slowest console).
//
//	go test ./web -run '^$' -bench 'BenchmarkFanout$' -benchtime 200000x -count 3
//	go test ./web -run '^$' -bench BenchmarkFanoutLatency -benchtime 1x -count 3
//
// Everything, consoles included, shares the machine's cores.

// endID marks the last event of a run: an incident, which is never
// coalesced and comes after every unit state published before it.
const endID = "INC-END-OF-RUN"

// gorillaHub is the anchor: one goroutine takes events, encodes each
// once and queues the bytes for every console; each console's writer
// writes each as its own frame.
type gorillaHub struct {
	mu       sync.Mutex
	clients  map[chan []byte]struct{}
	events   chan *dispatch.Event
	upgrader websocket.Upgrader
}

func newGorillaHub(tb testing.TB) (*gorillaHub, string) {
	h := &gorillaHub{clients: map[chan []byte]struct{}{}, events: make(chan *dispatch.Event)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := h.upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		send := make(chan []byte, 256)
		h.mu.Lock()
		h.clients[send] = struct{}{}
		h.mu.Unlock()
		go func() {
			defer conn.Close()
			for msg := range send {
				_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
				if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
					return
				}
			}
		}()
	}))
	go func() {
		for e := range h.events {
			b, _ := json.Marshal(e)
			h.mu.Lock()
			for c := range h.clients {
				c <- b
			}
			h.mu.Unlock()
		}
		h.mu.Lock()
		for c := range h.clients {
			close(c)
		}
		h.mu.Unlock()
	}()
	tb.Cleanup(func() { close(h.events); srv.Close() })
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

const writeWait = 10 * time.Second

// reader is one console of a benchmark: it counts the unit states it
// gets and, when asked, how late each came (its fix time is in seq, as
// unix nanoseconds), and closes done at the run's last event.
type reader struct {
	conn    *websocket.Conn
	states  atomic.Int64
	done    chan struct{}
	snap    chan struct{} // closed at the snapshot: the console is joined
	measure bool
	lat     []time.Duration // read after done
}

var (
	unitMark = []byte(`{"type":"unit"`)
	seqMark  = []byte(`q":`) // of "seq": 'q' is rare in the JSON, so the search is fast
	endMark  = []byte(endID)
)

func (r *reader) run() {
	buf := make([]byte, 0, 1<<20)
	for {
		_, rd, err := r.conn.NextReader()
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, cap(buf))
			}
			n, err := rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
		}
		b := buf
		if bytes.HasPrefix(b, []byte(`{"type":"snapshot"`)) {
			close(r.snap)
			continue
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"batch"`)) && !bytes.HasPrefix(b, unitMark) && !bytes.HasPrefix(b, []byte(`{"type":"incident"`)) {
			continue // the snapshot, pings
		}
		if !r.measure {
			r.states.Add(int64(bytes.Count(b, unitMark)))
		} else {
			now := time.Now().UnixNano()
			for rest := b; ; {
				i := bytes.Index(rest, seqMark)
				if i < 0 {
					break
				}
				rest = rest[i+len(seqMark):]
				var ns int64
				for _, d := range rest {
					if d < '0' || d > '9' {
						break
					}
					ns = ns*10 + int64(d-'0')
				}
				r.lat = append(r.lat, time.Duration(now-ns))
				r.states.Add(1)
			}
		}
		if bytes.Contains(b[max(0, len(b)-256):], endMark) { // the last event of its frame
			close(r.done) // the connection stays open, unread
			return
		}
	}
}

// dialReaders connects n consoles to url and starts reading; with a
// token (Lifeline), it returns once every console has its snapshot.
func dialReaders(tb testing.TB, n int, url, token string, measure bool) []*reader {
	tb.Helper()
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	rs := make([]*reader, n)
	for i := range rs {
		conn, _, err := d.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
		if err != nil {
			tb.Fatalf("console %d: %v", i, err)
		}
		tb.Cleanup(func() { conn.Close() })
		rs[i] = &reader{conn: conn, done: make(chan struct{}), snap: make(chan struct{}), measure: measure}
		go rs[i].run()
	}
	for _, r := range rs {
		if token == "" {
			break
		}
		select {
		case <-r.snap:
		case <-time.After(time.Minute):
			tb.Fatal("a console got no snapshot")
		}
	}
	return rs
}

// waitAll waits until every console got the last event, or d passed; it
// returns how many did not.
func waitAll(rs []*reader, d time.Duration) (missing int) {
	deadline := time.After(d)
	for _, r := range rs {
		select {
		case <-r.done:
		case <-deadline:
			missing++
		}
	}
	return missing
}

// fleetStates are n units' states in the benchmark county.
func fleetStates(n int) []dispatch.UnitState {
	out := make([]dispatch.UnitState, n)
	now := time.Now()
	for i := range out {
		id := fmt.Sprintf("U%06d", i)
		out[i] = dispatch.UnitState{
			Unit:   dispatch.Unit{ID: id, Callsign: id, Station: "S1", Jurisdiction: countyA, Capabilities: []string{dispatch.BLS}},
			Status: dispatch.Available, Online: true,
			Position: &dispatch.Position{Lat: centreA.Lat() + float64(i%100)*0.001, Lon: centreA.Lon() + float64(i/100%100)*0.001, SpeedKmh: 42.5, Heading: 270, HDOP: 0.9, Time: now},
			LastSeen: now, Version: 1,
		}
	}
	return out
}

// unitEvent is the event of unit state st as a fix of time at.
func unitEvent(st dispatch.UnitState, at time.Time) *dispatch.Event {
	p := *st.Position
	p.Seq, p.Time = uint64(at.UnixNano()), at
	st.Position = &p
	return &dispatch.Event{Type: dispatch.EventUnit, Unit: &st, Jurisdiction: st.Jurisdiction}
}

func endEvent() *dispatch.Event {
	return &dispatch.Event{Type: dispatch.EventIncident, Incident: &dispatch.Incident{ID: endID, Jurisdiction: countyA}, Jurisdiction: countyA}
}

// feed publishes to Lifeline's bus, keeping the fan's backlog under what
// the bus holds (a benchmark publishes faster than any fleet reports).
func feed(b *bench) func(*dispatch.Event) {
	n := 0
	return func(e *dispatch.Event) {
		if n++; n%256 == 0 {
			for web.Backlog(b.srv) > web.FanBuffer/2 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		b.bus.Publish(*e)
	}
}

// BenchmarkFanout is 1,000 consoles of one county following a fleet of
// 1,000 units whose states are published as fast as the feed takes
// them: b.N states, then one last event. deliveries/s is states
// published times consoles over the time until every console has the
// last event (a state replaced by a newer one before it was sent counts
// as delivered: the console has the newer one); written/s counts only
// the states written to consoles.
func BenchmarkFanout(b *testing.B) {
	consoles, units := 1000, 1000
	if n, err := strconv.Atoi(os.Getenv("LIFELINE_BENCH_CONSOLES")); err == nil && n > 0 {
		consoles = n
	}
	fleet := fleetStates(units)
	ways := []struct {
		name  string
		setup func(b *testing.B) (publish func(*dispatch.Event), rs []*reader)
	}{
		{"lifeline", func(b *testing.B) (func(*dispatch.Event), []*reader) {
			srv := newBench(b, 0)
			rs := dialReaders(b, consoles, "ws"+strings.TrimPrefix(srv.url, "http")+"/api/v1/live", srv.token, false)
			return feed(srv), rs
		}},
		{"gorilla", func(b *testing.B) (func(*dispatch.Event), []*reader) {
			h, url := newGorillaHub(b)
			rs := dialReaders(b, consoles, url, "", false)
			for { // every console registered
				h.mu.Lock()
				n := len(h.clients)
				h.mu.Unlock()
				if n == consoles {
					break
				}
				time.Sleep(time.Millisecond)
			}
			return func(e *dispatch.Event) { h.events <- e }, rs
		}},
	}
	for _, w := range ways {
		b.Run(fmt.Sprintf("%s/consoles=%d", w.name, consoles), func(b *testing.B) {
			publish, rs := w.setup(b)
			time.Sleep(100 * time.Millisecond) // the snapshots out of the way
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				publish(unitEvent(fleet[i%units], start))
			}
			publish(endEvent())
			if missing := waitAll(rs, benchWait()); missing > 0 {
				b.Fatalf("%d consoles never got the last event", missing)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			var written int64
			for _, r := range rs {
				written += r.states.Load()
			}
			b.ReportMetric(float64(b.N)*float64(consoles)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(written)/elapsed.Seconds(), "written/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkFanoutLatency is a fleet reporting on schedule to consoles
// that all read: how late each state reaches each console, from the fix
// time (its schedule: a feed that falls behind makes its states late).
// states/fix is how many states reached a console per fix
// published (below 1: states replaced by newer ones on the way);
// for each case in the same run, Lifeline then the gorilla hub. Each run
// lasts LIFELINE_BENCH_SECONDS (default 10). dropped counts consoles
// that did not get the run's last event.
func BenchmarkFanoutLatency(b *testing.B) {
	seconds := 10
	if s, err := strconv.Atoi(os.Getenv("LIFELINE_BENCH_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	cases := []struct {
		consoles, units int
		every           time.Duration
	}{
		{200, 10000, 2 * time.Second}, // the target: 5,000 fixes/s
		{1000, 52, time.Second},       // the measurement: 52 fixes/s
	}
	for _, c := range cases {
		fleet := fleetStates(c.units)
		for _, way := range []string{"lifeline", "gorilla"} {
			b.Run(fmt.Sprintf("%s/consoles=%d/fixes_per_s=%d", way, c.consoles, int(float64(c.units)/c.every.Seconds())), func(b *testing.B) {
				var (
					publish func(*dispatch.Event)
					rs      []*reader
				)
				if way == "lifeline" {
					srv := newBench(b, 0)
					rs = dialReaders(b, c.consoles, "ws"+strings.TrimPrefix(srv.url, "http")+"/api/v1/live", srv.token, true)
					publish = func(e *dispatch.Event) { srv.bus.Publish(*e) }
				} else {
					h, url := newGorillaHub(b)
					rs = dialReaders(b, c.consoles, url, "", true)
					publish = func(e *dispatch.Event) { h.events <- e }
				}
				time.Sleep(200 * time.Millisecond)
				runtime.GC()
				b.ResetTimer()
				// Every 10 ms, the fixes due in it, each stamped with its
				// scheduled time.
				const tick = 10 * time.Millisecond
				perTick := float64(c.units) * tick.Seconds() / c.every.Seconds()
				start := time.Now()
				due := 0.0
				sent := 0
				for t := start; t.Sub(start) < time.Duration(seconds)*time.Second; t = t.Add(tick) {
					time.Sleep(time.Until(t))
					for due += perTick; float64(sent) < due; sent++ {
						publish(unitEvent(fleet[sent%c.units], t))
					}
				}
				publish(endEvent())
				missing := waitAll(rs, 2*time.Minute)
				b.StopTimer()
				var (
					lat    []time.Duration
					states int64
				)
				for _, r := range rs {
					select {
					case <-r.done:
						lat = append(lat, r.lat...)
						states += r.states.Load()
					default:
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(quantile(lat, 0.50).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(missing), "dropped")
				b.ReportMetric(float64(states)/float64(max(1, len(rs)-missing))/float64(sent), "states/fix")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// benchWait is how long a run may take to reach every console.
func benchWait() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LIFELINE_BENCH_WAIT")); err == nil {
		return d
	}
	return 10 * time.Minute
}
