package sim

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// pubackFilter is a TCP proxy between terminals and a broker that can
// stop passing the broker's PUBACKs on, and cut the connections.
type pubackFilter struct {
	ln       net.Listener
	broker   string
	drop     atomic.Bool
	passed   atomic.Int64 // PUBACKs passed on to a terminal
	accepted atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newPubackFilter(tb testing.TB, brokerURL string) *pubackFilter {
	tb.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &pubackFilter{ln: ln, broker: u.Host}
	f.wg.Go(f.accept)
	tb.Cleanup(func() {
		ln.Close()
		f.cut()
		f.wg.Wait()
	})
	return f
}

func (f *pubackFilter) url() string { return "tcp://" + f.ln.Addr().String() }

func (f *pubackFilter) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", f.broker)
		if err != nil {
			c.Close()
			continue
		}
		f.accepted.Add(1)
		f.mu.Lock()
		f.conns = append(f.conns, c, b)
		f.mu.Unlock()
		f.wg.Go(func() { io.Copy(b, c); b.Close() })
		f.wg.Go(func() { f.down(c, b); c.Close() })
	}
}

// down passes the broker's packets to the terminal, less the PUBACKs
// while drop is set.
func (f *pubackFilter) down(to io.Writer, from io.Reader) {
	r := bufio.NewReader(from)
	for {
		head, err := r.ReadByte()
		if err != nil {
			return
		}
		pkt := []byte{head}
		n, shift := 0, 0
		for { // remaining length: a varint of up to 4 bytes
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			pkt = append(pkt, b)
			n |= int(b&0x7f) << shift
			if b&0x80 == 0 {
				break
			}
			shift += 7
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if puback := head>>4 == 4; puback {
			if f.drop.Load() {
				continue
			}
			f.passed.Add(1)
		}
		if _, err := to.Write(append(pkt, body...)); err != nil {
			return
		}
	}
}

// cut closes every connection through the filter.
func (f *pubackFilter) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// TestFleetAckedOnlyOnPuback: a message in flight when the connection
// drops is not acknowledged, though paho completes its publish token when
// it reconnects; Config.Acked tells only of the PUBACKs that arrived.
func TestFleetAckedOnlyOnPuback(t *testing.T) {
	filter := newPubackFilter(t, brokerURL(t))
	u := "SIM-" + suffix(t) + "-P"
	const prefix = "fleetsim-test-"
	forget(t, brokerURL(t), prefix, u)
	var acked, gps atomic.Int64
	cfg := Config{
		URL: filter.url(), Interval: 20 * time.Millisecond, Speedup: 50, ClientPrefix: prefix,
		Acked: func(_ string, k telemetry.Kind, _ []byte) {
			acked.Add(1)
			if k == telemetry.KindGPS {
				gps.Add(1)
			}
		},
	}
	fleet := New(World{Units: []UnitSpec{{ID: u, Home: station}}}, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fleet.Run(ctx) }()
	await(t, "five acknowledged fixes", 10*time.Second, func() bool { return gps.Load() >= 5 })

	// The broker's PUBACKs stop reaching the terminal; a fix is sent and
	// waits for its PUBACK; the connection drops and comes back.
	filter.drop.Store(true)
	time.Sleep(200 * time.Millisecond)
	filter.cut()
	await(t, "the terminal reconnected", 10*time.Second, func() bool { return filter.accepted.Load() >= 2 })
	time.Sleep(500 * time.Millisecond) // paho resumes the session: it completes the old tokens and sends again
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if got, want := acked.Load(), filter.passed.Load(); got != want {
		t.Fatalf("Acked told of %d messages; %d PUBACKs reached the terminal", got, want)
	}
}
