package web

import (
	"net/http"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// destinations advises where to take an incident's patient
// (GET /api/v1/incidents/{id}/destinations).
func (s *Server) destinations(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	d, err := s.cfg.Dispatch.Destinations(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// hospitals lists the destinations of the whole area with their
// diversion state (a crew may take a patient across a county line),
// narrowed by ?jurisdiction= (GET /api/v1/hospitals).
func (s *Server) hospitals(w http.ResponseWriter, r *http.Request, _ dispatch.Principal) {
	hs, err := s.cfg.Dispatch.Hospitals(r.Context(), r.URL.Query().Get("jurisdiction"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hospitals": hs})
}

// diversionRequest puts a hospital on diversion or lifts it.
type diversionRequest struct {
	Diversion *bool  `json:"diversion"`
	Until     string `json:"until"` // RFC 3339; empty: until lifted
	Reason    string `json:"reason"`
}

// setDiversion changes a hospital's diversion state
// (PATCH /api/v1/hospitals/{id}).
func (s *Server) setDiversion(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	var req diversionRequest
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if req.Diversion == nil {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `field "diversion" is required: true or false`))
		return
	}
	var until time.Time
	if req.Until != "" {
		t, err := time.Parse(time.RFC3339, req.Until)
		if err != nil {
			s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, "until %q: want an RFC 3339 time", req.Until))
			return
		}
		until = t
	}
	h, err := s.cfg.Dispatch.SetDiversion(r.Context(), p, r.PathValue("id"), dispatch.Diversion{Diversion: *req.Diversion, Until: until, Reason: req.Reason})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// statusRequest sets a unit's status on a dispatcher's word.
type statusRequest struct {
	Status dispatch.UnitStatus `json:"status"`
}

// setUnitStatus sets a unit's status (POST /api/v1/units/{id}/status):
// what the crew said on the radio, or what telemetry suggested.
func (s *Server) setUnitStatus(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	var req statusRequest
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if req.Status == "" {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `field "status" is required`))
		return
	}
	u, err := s.cfg.Dispatch.SetStatus(r.Context(), p, r.PathValue("id"), req.Status)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}
