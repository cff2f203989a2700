package web

import (
	"context"
	"sync"

	"github.com/gorilla/websocket"
)

// snapshots builds the first message of the live feed once for the
// consoles that connect together (a reconnect storm after a restart, a
// control room opening its consoles at shift change): they share one
// build and one encoded message (a websocket.PreparedMessage), instead of
// each reading the picture and encoding about a megabyte of its own.
//
// A console may share only a build that began reading after it
// subscribed to the events, or an event could fall between the snapshot
// and its subscription and be lost to it. A console therefore never joins
// the build in progress when it arrives: it waits for that build to end,
// then shares the next one, which everyone who arrived meanwhile shares
// too. A storm of N consoles costs two builds, not N; a console alone
// waits for nothing.
type snapshots struct {
	mu      sync.Mutex
	flights map[string]*flight // the build in progress, by key
	waiting int                // consoles waiting for a build, for tests
}

// flight is one build: msg and err are set before done is closed.
type flight struct {
	done chan struct{}
	msg  *websocket.PreparedMessage
	err  error
}

func newSnapshots() *snapshots { return &snapshots{flights: map[string]*flight{}} }

// get returns the snapshot for key, from a build that began after the
// call (the caller has subscribed before calling), running build itself
// when no other console is about to. shared reports whether another
// console built it.
func (s *snapshots) get(ctx context.Context, key string, build func() (*websocket.PreparedMessage, error)) (msg *websocket.PreparedMessage, shared bool, err error) {
	first := true
	for {
		s.mu.Lock()
		f := s.flights[key]
		if f == nil {
			f = &flight{done: make(chan struct{})}
			s.flights[key] = f
			s.mu.Unlock()
			f.msg, f.err = build()
			s.mu.Lock()
			delete(s.flights, key) // before done: whoever wakes starts a new build
			s.mu.Unlock()
			close(f.done)
			return f.msg, false, f.err
		}
		s.waiting++
		s.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
		}
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if !first { // f began after this call: it is ours to share
			return f.msg, true, f.err
		}
		first = false
	}
}
