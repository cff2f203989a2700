package web

import "time"

// SetRecheck sets how often live feeds check their session again; call it
// before any feed connects.
func SetRecheck(s *Server, d time.Duration) { s.hub.recheck = d }
