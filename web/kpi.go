package web

import (
	"net/http"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// kpis serves the KPI ledger (GET /api/v1/kpis?jurisdiction=&from=&to=):
// the calls that came in [from, to) in the jurisdiction and beneath it;
// to defaults to now, from to 24 hours before to.
func (s *Server) kpis(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	q := r.URL.Query()
	to, err := parseTime("to", q.Get("to"), time.Time{})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	from, err := parseTime("from", q.Get("from"), time.Time{})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	k, err := s.cfg.Dispatch.KPIs(r.Context(), p, q.Get("jurisdiction"), from, to)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// coverage serves the coverage of a jurisdiction now, its uncovered cells
// and the best move-up (GET /api/v1/coverage?jurisdiction=).
func (s *Server) coverage(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	c, err := s.cfg.Dispatch.Coverage(r.Context(), p, r.URL.Query().Get("jurisdiction"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
