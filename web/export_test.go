package web

import (
	"net/http"
	"time"
)

// SetRecheck sets how often live feeds check their session again; call it
// before any feed connects.
func SetRecheck(s *Server, d time.Duration) { s.hub.recheck = d }

// WriteJSON is writeJSON, for tests of the reply itself.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// SetWindow sets how long unit states gather before they are sent; call
// it before any feed connects.
func SetWindow(s *Server, d time.Duration) { s.hub.window = d }

// Backlog is how many events wait for the live feed's fan (0 before the
// first console): a benchmark publishing as fast as it can keeps it
// below what the bus holds.
func Backlog(s *Server) int {
	s.hub.mu.Lock()
	f := s.hub.fan
	s.hub.mu.Unlock()
	if f == nil {
		return 0
	}
	if sub := f.sub.Load(); sub != nil {
		return len(sub.C)
	}
	return 0
}

// FanBuffer is how many events the fan may fall behind.
const FanBuffer = fanBuffer
