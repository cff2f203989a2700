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
