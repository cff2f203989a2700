package web

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestSnapshotsShared: consoles that arrive while a snapshot is being
// built do not take it (it began before they subscribed) but all share
// the next one; a storm costs two builds. Another key builds its own.
func TestSnapshotsShared(t *testing.T) {
	s := newSnapshots()
	var builds atomic.Int32
	release := []chan struct{}{make(chan struct{}), make(chan struct{})} // the first two builds wait
	build := func() (*websocket.PreparedMessage, error) {
		n := builds.Add(1)
		if int(n) <= len(release) {
			<-release[n-1]
		}
		return websocket.NewPreparedMessage(websocket.TextMessage, []byte{byte('0' + n)})
	}
	type result struct {
		msg    *websocket.PreparedMessage
		shared bool
	}
	results := make(chan result, 20)
	get := func(key string) {
		msg, shared, err := s.get(context.Background(), key, build)
		if err != nil {
			t.Error(err)
		}
		results <- result{msg, shared}
	}
	go get("county")
	waitUntil(t, func() bool { return builds.Load() == 1 })
	const late = 10
	for range late {
		go get("county")
	}
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.waiting == late })
	close(release[0])
	// One late console builds the next snapshot; the others wait for it.
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return builds.Load() == 2 && s.waiting == late-1 })
	close(release[1])
	byBuild := map[*websocket.PreparedMessage][]bool{} // snapshot -> shared, per console
	for range late + 1 {
		r := <-results
		byBuild[r.msg] = append(byBuild[r.msg], r.shared)
	}
	if n := builds.Load(); n != 2 || len(byBuild) != 2 {
		t.Fatalf("%d builds, %d snapshots for 11 consoles, want 2", n, len(byBuild))
	}
	for _, shared := range byBuild {
		built := 0
		for _, s := range shared {
			if !s {
				built++
			}
		}
		if built != 1 || (len(shared) != 1 && len(shared) != late) {
			t.Fatalf("a snapshot went to %d consoles, %d of them its builder: want the first console alone, then the %d late ones sharing", len(shared), built, late)
		}
	}
	go get("other county")
	if r := <-results; r.shared || builds.Load() != 3 {
		t.Fatalf("another key: shared %v after %d builds, want its own build", r.shared, builds.Load())
	}
}

// TestSnapshotsLeave: a console that leaves while waiting stops waiting.
func TestSnapshotsLeave(t *testing.T) {
	s := newSnapshots()
	release := make(chan struct{})
	defer close(release)
	go func() {
		_, _, _ = s.get(context.Background(), "k", func() (*websocket.PreparedMessage, error) { <-release; return nil, nil })
	}()
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.flights["k"] != nil })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { _, _, err = s.get(ctx, "k", nil) })
	cancel()
	wg.Wait()
	if err != context.Canceled {
		t.Fatalf("a waiting console that left got %v, want context.Canceled", err)
	}
}

func waitUntil(tb testing.TB, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
