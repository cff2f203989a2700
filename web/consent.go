package web

import (
	"net/http"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// consents lists the consent requests the caller is party to, newest
// first: GET /api/v1/consents?status=pending&incident=&limit=. Those whose
// "from" lies in the caller's scope await its answer.
func (s *Server) consents(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	list, err := s.cfg.Dispatch.Consents(r.Context(), p, dispatch.ConsentFilter{Status: dispatch.ConsentStatus(q.Get("status")), Incident: q.Get("incident"), Limit: limit})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if list == nil {
		list = []*dispatch.Consent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"consents": list})
}

func (s *Server) consent(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	c, err := s.cfg.Dispatch.Consent(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"consent": c})
}

// answerRequest answers a consent request.
type answerRequest struct {
	Decision dispatch.ConsentDecision `json:"decision"`
	Reason   string                   `json:"reason"`
}

// answerConsent is the owning county's answer: POST /api/v1/consents/{id}
// {"decision":"accept"|"decline","reason"}. Accepted, the answer carries
// the assignment made.
func (s *Server) answerConsent(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	var req answerRequest
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if req.Decision == "" {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `field "decision" is required: accept or decline`))
		return
	}
	c, a, err := s.cfg.Dispatch.AnswerConsent(r.Context(), p, r.PathValue("id"), req.Decision, req.Reason)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := map[string]any{"consent": c}
	if a != nil {
		out["assignment"] = a
	}
	writeJSON(w, http.StatusOK, out)
}

// jurisdictions lists the area's jurisdictions with the consent policy
// that applies to each: GET /api/v1/jurisdictions.
func (s *Server) jurisdictions(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	list, err := s.cfg.Dispatch.ConsentPolicies(r.Context(), p)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jurisdictions": list})
}

// jurisdictionPatch changes a jurisdiction's settings.
type jurisdictionPatch struct {
	Consent dispatch.ConsentPolicy `json:"consent"`
}

// setJurisdiction sets how a county answers requests for its units:
// PATCH /api/v1/jurisdictions/{id} {"consent":"auto"|"ask"}.
func (s *Server) setJurisdiction(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	var req jurisdictionPatch
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if req.Consent == "" {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `field "consent" is required: auto or ask`))
		return
	}
	j, err := s.cfg.Dispatch.SetConsentPolicy(r.Context(), p, r.PathValue("id"), req.Consent)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}
