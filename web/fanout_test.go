package web

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// events decodes a frame into its events' short names: "U1@3" for the
// third state of unit U1, "I7" for incident 7.
func events(tb testing.TB, frame []byte) []string {
	tb.Helper()
	var m struct {
		Type   string
		Events []struct {
			Type string
			Unit struct {
				ID      string
				Version int
			}
			Incident struct{ ID string }
		}
	}
	if err := json.Unmarshal(frame, &m); err != nil || m.Type != "batch" {
		tb.Fatalf("frame %s: %v", frame, err)
	}
	var out []string
	for _, e := range m.Events {
		switch e.Type {
		case "unit":
			out = append(out, fmt.Sprintf("%s@%d", e.Unit.ID, e.Unit.Version))
		default:
			out = append(out, e.Incident.ID)
		}
	}
	return out
}

func unitEvent(id string, v int) []byte {
	return fmt.Appendf(nil, `{"type":"unit","unit":{"id":%q,"version":%d}}`, id, v)
}

func otherEvent(id string) []byte {
	return fmt.Appendf(nil, `{"type":"incident","incident":{"id":%q}}`, id)
}

// add adds events named as events names them to b.
func add(b *batch, names ...string) {
	for _, n := range names {
		if id, v, ok := strings.Cut(n, "@"); ok {
			version, _ := strconv.Atoi(v)
			b.add(id, unitEvent(id, version))
			continue
		}
		b.add("", otherEvent(n))
	}
}

// TestBatch: a batch keeps one state per unit, the latest, and every
// other event, in order: a state newer than another event comes after it.
func TestBatch(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"units coalesce", []string{"U1@1", "U2@1", "U1@2", "U1@3"}, []string{"U2@1", "U1@3"}},
		{"others never", []string{"I1", "I2", "I1"}, []string{"I1", "I2", "I1"}},
		{"order kept", []string{"U1@1", "I1", "U1@2", "I2", "U2@1"}, []string{"I1", "U1@2", "I2", "U2@1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b batch
			add(&b, tt.in...)
			if got := events(t, b.frame()); !slices.Equal(got, tt.want) {
				t.Fatalf("frame holds %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("compacts", func(t *testing.T) {
		var b batch
		for v := range 1000 {
			for u := range 3 {
				b.add(fmt.Sprint("U", u), unitEvent(fmt.Sprint("U", u), v))
			}
		}
		if len(b.entries) > 200 {
			t.Fatalf("%d entries held for 3 units", len(b.entries))
		}
		if got := events(t, b.frame()); !slices.Equal(got, []string{"U0@999", "U1@999", "U2@999"}) {
			t.Fatalf("frame holds %q", got)
		}
	})
}

// TestConsoleBehind: frames wait for a console that is busy writing; it
// writes a few as they are, but more than mergeAt it gets merged into one
// batch of its own, holding the latest state of each unit and every other
// event in order. Past maxQueued frames the fan folds them as they come,
// so that what waits is bounded by the fleet, not by time; a console
// that falls more than maxBehind other events behind ends (1013).
func TestConsoleBehind(t *testing.T) {
	_, cancel := context.WithCancel(context.Background())
	c := &console{cancel: cancel, wake: make(chan struct{}, 1)}
	frame := func(names ...string) *sent {
		b := &batch{}
		add(b, names...)
		msg, err := websocket.NewPreparedMessage(websocket.TextMessage, b.frame())
		if err != nil {
			t.Fatal(err)
		}
		return &sent{b: b, msg: msg}
	}
	var few []*sent
	for i := range mergeAt {
		few = append(few, frame(fmt.Sprintf("U1@%d", i), fmt.Sprintf("I%d", i)))
		c.push(few[i])
	}
	if q, own, _ := c.take(); own != nil || !slices.Equal(q, few) {
		t.Fatalf("a console keeping up: %d frames and a batch of its own %v; want the %d shared frames", len(q), own != nil, mergeAt)
	}
	for _, n := range []int{mergeAt + 1, maxQueued + 50} {
		t.Run(fmt.Sprint(n, " frames behind"), func(t *testing.T) {
			var want []string
			for i := range n {
				c.push(frame(fmt.Sprintf("U1@%d", i), fmt.Sprintf("U2@%d", i), fmt.Sprintf("I%d", i)))
				want = append(want, fmt.Sprintf("I%d", i))
			}
			if n > maxQueued {
				c.mu.Lock()
				waiting := len(c.queue)
				c.mu.Unlock()
				if waiting > maxQueued {
					t.Fatalf("%d frames wait, want at most %d", waiting, maxQueued)
				}
			}
			q, own, replaced := c.take()
			if len(q) != 0 || own == nil {
				t.Fatalf("a console behind: %d shared frames to write, own batch %v", len(q), own != nil)
			}
			last := fmt.Sprint("@", n-1)
			want = slices.Insert(want, len(want)-1, "U1"+last, "U2"+last) // the last states came before the last call
			if got := events(t, own.frame()); !slices.Equal(got, want) {
				t.Fatalf("its batch holds %q\nwant %q", got, want)
			}
			if replaced == 0 {
				t.Fatal("no replaced state counted")
			}
		})
	}
	for i := range maxBehind + 1 {
		c.push(frame(fmt.Sprintf("I%d", i)))
	}
	if code, _ := c.ending(); code != websocket.CloseTryAgainLater {
		t.Fatalf("a console %d events behind: close code %d, want 1013", maxBehind+1, code)
	}
}
