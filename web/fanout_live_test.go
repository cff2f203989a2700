package web_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/web"
)

// frame reads the next frame of the feed but pings, whole.
func frame(tb testing.TB, c *websocket.Conn) message {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m message
		if err := c.ReadJSON(&m); err != nil {
			tb.Fatalf("read live: %v", err)
		}
		if m.Type != "ping" {
			return m
		}
	}
}

// TestLiveBatched: deltas come as batches; a unit's states gather for
// the window and only its latest is sent, while any other event is sent
// at once, with the states gathered before it, in order.
func TestLiveBatched(t *testing.T) {
	e := newEnv(t, func(s *web.Server) { web.SetWindow(s, time.Hour) }) // units alone never go out
	c := e.live(t, "", bearer(e.tokens["disp-a"]))
	if m := read(t, c); m.Type != "snapshot" {
		t.Fatalf("first message %s", m.Type)
	}
	before := counter(t, e, "lifeline_live_coalesced_total", "", "")
	for i := range 5 {
		e.clock.Add(time.Second)
		e.move(t, "U01", orb.Point{centreA[0] + float64(i)*0.001, centreA[1]})
	}
	time.Sleep(300 * time.Millisecond) // time enough for a frame that should not go
	inc := e.incident(t, centreA)
	// The first frame after the snapshot: nothing went with unit states only.
	m := frame(t, c)
	if m.Type != "batch" || len(m.Events) != 2 {
		t.Fatalf("the first frame: %+v, want a batch of the unit's last state and the call", m)
	}
	if u := m.Events[0].Unit; u == nil || u.ID != "U01" || u.Position.Lon != centreA[0]+0.004 {
		t.Fatalf("first in the batch: %+v, want U01 at its latest position", m.Events[0])
	}
	if i := m.Events[1].Incident; i == nil || i.ID != inc.ID {
		t.Fatalf("second in the batch: %+v, want the call", m.Events[1])
	}
	if n := counter(t, e, "lifeline_live_coalesced_total", "", "") - before; n != 4 {
		t.Fatalf("lifeline_live_coalesced_total grew by %v, want 4", n)
	}

	t.Run("units on their own, within the window", func(t *testing.T) {
		e := newEnv(t)
		c := e.live(t, "", bearer(e.tokens["disp-a"]))
		read(t, c)
		e.move(t, "U02", centreA)
		if m := read(t, c); m.Unit == nil || m.Unit.ID != "U02" {
			t.Fatalf("got %+v, want U02's state", m)
		}
	})
}

// countingConn counts the bytes read from the network.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestLiveSnapshotCompressed: a console that asks for permessage-deflate
// (every browser does) gets the snapshot compressed, a fraction of its
// JSON on the wire.
func TestLiveSnapshotCompressed(t *testing.T) {
	b := newBench(t, 1000)
	var wire atomic.Int64
	d := websocket.Dialer{
		EnableCompression: true,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return countingConn{conn, &wire}, err
		},
	}
	c, res, err := d.Dial("ws"+strings.TrimPrefix(b.url, "http")+"/api/v1/live", http.Header{"Authorization": {"Bearer " + b.token}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := res.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extensions %q: compression not agreed", ext)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, raw, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Type  string
		Units []json.RawMessage
	}
	if err := json.Unmarshal(raw, &snap); err != nil || snap.Type != "snapshot" || len(snap.Units) != 1000 {
		t.Fatalf("snapshot: %s with %d units, %v", snap.Type, len(snap.Units), err)
	}
	t.Logf("snapshot of 1,000 units: %d bytes of JSON, %d on the wire", len(raw), wire.Load())
	if wire.Load() > int64(len(raw))/3 {
		t.Fatalf("%d bytes on the wire for %d of JSON: want it compressed", wire.Load(), len(raw))
	}
}
