package web

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

//go:embed static
var static embed.FS

// Dispatcher is what the web layer needs of the dispatch engine. Every
// call that reads or acts names the principal it is made for; the engine
// applies the access rules.
type Dispatcher interface {
	Area() *dispatch.Area
	Scope(by dispatch.Principal, want string) (string, error)
	Units(by dispatch.Principal, scope string) ([]dispatch.UnitState, error)
	Unit(by dispatch.Principal, id string) (dispatch.UnitState, error)
	Track(ctx context.Context, by dispatch.Principal, q telemetry.TrackQuery, fn func(telemetry.Fix) error) (telemetry.TrackCursor, error)
	CreateIncident(ctx context.Context, by dispatch.Principal, n dispatch.NewIncident) (*dispatch.Incident, dispatch.Recommendations, bool, error)
	Incident(ctx context.Context, by dispatch.Principal, id string) (*dispatch.Incident, error)
	Incidents(ctx context.Context, by dispatch.Principal, f dispatch.IncidentFilter) ([]*dispatch.Incident, error)
	Assignments(ctx context.Context, by dispatch.Principal, incident string) ([]*dispatch.Assignment, error)
	ActiveAssignments(ctx context.Context, by dispatch.Principal) ([]*dispatch.Assignment, error)
	Transitions(ctx context.Context, by dispatch.Principal, incident string) ([]dispatch.Transition, error)
	Recommend(ctx context.Context, by dispatch.Principal, id string) (dispatch.Recommendations, error)
	Request(ctx context.Context, by dispatch.Principal, incident, unit string) (*dispatch.Assignment, *dispatch.Consent, error)
	EndIncident(ctx context.Context, by dispatch.Principal, id string, status dispatch.IncidentStatus, outcome string) (*dispatch.Incident, error)
	CancelAssignment(ctx context.Context, by dispatch.Principal, incident, assignment, reason string) (*dispatch.Assignment, error)
	SetStatus(ctx context.Context, by dispatch.Principal, unit string, to dispatch.UnitStatus) (dispatch.UnitState, error)
	Destinations(ctx context.Context, by dispatch.Principal, incident string) (dispatch.Destinations, error)
	Hospitals(ctx context.Context, scope string) ([]dispatch.HospitalStatus, error)
	SetDiversion(ctx context.Context, by dispatch.Principal, hospital string, d dispatch.Diversion) (dispatch.HospitalStatus, error)
	Consent(ctx context.Context, by dispatch.Principal, id string) (*dispatch.Consent, error)
	Consents(ctx context.Context, by dispatch.Principal, f dispatch.ConsentFilter) ([]*dispatch.Consent, error)
	AnswerConsent(ctx context.Context, by dispatch.Principal, id string, d dispatch.ConsentDecision, reason string) (*dispatch.Consent, *dispatch.Assignment, error)
	ConsentPolicies(ctx context.Context, by dispatch.Principal) ([]dispatch.JurisdictionPolicy, error)
	SetConsentPolicy(ctx context.Context, by dispatch.Principal, jurisdiction string, p dispatch.ConsentPolicy) (dispatch.JurisdictionPolicy, error)
	KPIs(ctx context.Context, by dispatch.Principal, jurisdiction string, from, to time.Time) (*dispatch.KPIs, error)
	Coverage(ctx context.Context, by dispatch.Principal, jurisdiction string) (*dispatch.CoverageReport, error)
}

// Access is what the web layer needs of dispatch.Access: sessions, users
// and unit credentials.
type Access interface {
	Login(ctx context.Context, username, password, remote string) (string, dispatch.Session, error)
	Authenticate(ctx context.Context, token string) (dispatch.Principal, error)
	// Recheck is Authenticate from the record, never from memory.
	Recheck(ctx context.Context, token string) (dispatch.Principal, error)
	Logout(ctx context.Context, token string) error
	CreateUser(ctx context.Context, by dispatch.Principal, username, password string, role dispatch.Role, jurisdiction string) (*dispatch.User, error)
	Users(ctx context.Context, by dispatch.Principal) ([]*dispatch.User, error)
	RotateUnitCredentials(ctx context.Context, by dispatch.Principal, unit string) (string, error)
	SetRole(ctx context.Context, by dispatch.Principal, username string, role dispatch.Role, jurisdiction string) (*dispatch.User, error)
	SetDisabled(ctx context.Context, by dispatch.Principal, username string, disabled bool) (*dispatch.User, error)
	AuditLog(ctx context.Context, by dispatch.Principal, after int64, limit int) ([]dispatch.AuditEntry, error)
}

var _ Access = (*dispatch.Access)(nil)

// Events is where the live websocket takes its deltas from.
type Events interface {
	Subscribe(n int) *dispatch.Subscription
}

// Config holds what a Server is made of. Dispatch, Events and Access are
// required: every API call but signing in needs a session.
type Config struct {
	Addr     string // listen address, e.g. ":8080"
	Dispatch Dispatcher
	Events   Events
	Access   Access
	// TLS, when set, makes the server speak HTTPS only (it must hold a
	// certificate); session cookies are then marked Secure.
	TLS *tls.Config
	// AreaGeoJSON is the area file served at /api/v1/area (the console's
	// offline basemap).
	AreaGeoJSON []byte
	// Ready reports whether the server can do its job (broker connected,
	// store reachable); nil means always ready.
	Ready    func(ctx context.Context) error
	Metrics  http.Handler          // served at /metrics
	Registry prometheus.Registerer // where the web layer's own metrics go; may be nil
	// MaxBody is the largest request body accepted; default 64 KiB.
	MaxBody int64
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed when telling clients apart (the login rate limits, the
	// audit log). Empty: the TCP peer is the client.
	TrustedProxies []*net.IPNet
	// AllowedOrigins are extra browser origins allowed besides the
	// server's own (e.g. "https://city-ems.example"), on the websocket and
	// for cookie-authenticated requests that change something.
	AllowedOrigins []string
	// LivePerSession and LivePerUser are how many live feeds one session
	// and one user may hold at once; more are closed with 4429. Default
	// 4 and 16.
	LivePerSession int
	LivePerUser    int
	Logger         *slog.Logger
}

// Server serves the API, the live websocket and the console.
type Server struct {
	cfg      Config
	log      *slog.Logger
	rejected *prometheus.CounterVec
	ln       net.Listener
	srv      *http.Server
	hub      *hub
	mux      *http.ServeMux
	done     chan struct{}
}

// New listens on cfg.Addr at once, so that a port already in use is
// reported at start in one clear line.
func New(cfg Config) (*Server, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dispatch == nil || cfg.Events == nil || cfg.Access == nil {
		return nil, fmt.Errorf("http: Dispatch, Events and Access are required")
	}
	if cfg.TLS != nil && len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil {
		return nil, fmt.Errorf("http: the TLS configuration holds no certificate")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("http: listen %s: address already in use; pass --http with another address (e.g. --http :8081)", cfg.Addr)
		}
		return nil, fmt.Errorf("http: listen %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "web"), ln: ln, mux: http.NewServeMux(), done: make(chan struct{})}
	s.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lifeline_http_rejected_total",
		Help: "HTTP requests refused, by reason: too_large, malformed, unknown_field, wrong_type, unauthorized, forbidden.",
	}, []string{"reason"})
	for _, r := range rejectReasons {
		s.rejected.WithLabelValues(r)
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.rejected)
	}
	s.hub = newHub(s, cfg.Registry)
	s.routes()
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if cfg.TLS != nil {
		s.srv.TLSConfig = cfg.TLS.Clone()
	}
	// net/http's Shutdown does not close hijacked connections: the hub does.
	s.srv.RegisterOnShutdown(s.hub.shutdown)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler returns the server's routes, for tests.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves (HTTPS when Config.TLS is set) until ctx is done, then shuts
// down gracefully: in-flight requests get up to 5 s, websockets are closed
// with "going away".
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if s.srv.TLSConfig != nil {
			errc <- s.srv.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.srv.Serve(s.ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-errc
	s.hub.wait()
	return err
}

func (s *Server) routes() {
	m := s.mux
	// Open: health, metrics, signing in, and the console's files (it
	// must load to show its sign-in form).
	m.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Metrics != nil {
		m.Handle("GET /metrics", s.cfg.Metrics)
	}
	m.HandleFunc("POST /api/v1/sessions", s.login)

	// Everything else under /api/ needs a session (deny by default).
	a := s.authed
	m.HandleFunc("DELETE /api/v1/sessions", a(s.logout))
	m.HandleFunc("GET /api/v1/me", a(s.me))
	m.HandleFunc("POST /api/v1/users", a(s.createUser))
	m.HandleFunc("GET /api/v1/users", a(s.users))
	m.HandleFunc("PATCH /api/v1/users/{username}", a(s.updateUser))
	m.HandleFunc("GET /api/v1/audit", a(s.auditLog))
	m.HandleFunc("POST /api/v1/units/{id}/credentials", a(s.unitCredentials))
	m.HandleFunc("GET /api/v1/area", a(s.area))
	m.HandleFunc("GET /api/v1/units", a(s.units))
	m.HandleFunc("GET /api/v1/units/{id}", a(s.unit))
	m.HandleFunc("GET /api/v1/units/{id}/track", a(s.track))
	m.HandleFunc("POST /api/v1/incidents", a(s.createIncident))
	m.HandleFunc("GET /api/v1/incidents", a(s.incidents))
	m.HandleFunc("GET /api/v1/incidents/{id}", a(s.incident))
	m.HandleFunc("GET /api/v1/incidents/{id}/recommendations", a(s.recommendations))
	m.HandleFunc("PATCH /api/v1/incidents/{id}", a(s.endIncident))
	m.HandleFunc("POST /api/v1/incidents/{id}/assignments", a(s.assign))
	m.HandleFunc("DELETE /api/v1/incidents/{id}/assignments/{aid}", a(s.standDown))
	m.HandleFunc("GET /api/v1/incidents/{id}/destinations", a(s.destinations))
	m.HandleFunc("POST /api/v1/units/{id}/status", a(s.setUnitStatus))
	m.HandleFunc("GET /api/v1/consents", a(s.consents))
	m.HandleFunc("GET /api/v1/consents/{id}", a(s.consent))
	m.HandleFunc("POST /api/v1/consents/{id}", a(s.answerConsent))
	m.HandleFunc("GET /api/v1/jurisdictions", a(s.jurisdictions))
	m.HandleFunc("PATCH /api/v1/jurisdictions/{id}", a(s.setJurisdiction))
	m.HandleFunc("GET /api/v1/hospitals", a(s.hospitals))
	m.HandleFunc("PATCH /api/v1/hospitals/{id}", a(s.setDiversion))
	m.HandleFunc("GET /api/v1/kpis", a(s.kpis))
	m.HandleFunc("GET /api/v1/coverage", a(s.coverage))
	m.HandleFunc("GET /api/v1/live", a(s.hub.serve))
	m.HandleFunc("/api/", a(func(w http.ResponseWriter, r *http.Request, _ dispatch.Principal) {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
	}))
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	m.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		// No other site may frame the console (a hidden assign button).
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	}))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.Error(w, r, dispatch.Errorf(dispatch.CodeUnavailable, "not ready: %v", err))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) area(w http.ResponseWriter, r *http.Request, _ dispatch.Principal) {
	w.Header().Set("Content-Type", "application/geo+json")
	w.Header().Set("Cache-Control", "private, no-cache")
	_, _ = w.Write(s.cfg.AreaGeoJSON)
}

func (s *Server) units(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	units, err := s.cfg.Dispatch.Units(p, r.URL.Query().Get("jurisdiction"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"units": units})
}

func (s *Server) unit(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	u, err := s.cfg.Dispatch.Unit(p, r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// incidentView is an incident with what belongs to it on the wire.
type incidentView struct {
	*dispatch.Incident
	Recommendations *dispatch.Recommendations `json:"recommendations,omitempty"`
	Assignments     []*dispatch.Assignment    `json:"assignments,omitempty"`
	Transitions     []dispatch.Transition     `json:"transitions,omitempty"`
	Tracks          []assignmentTrack         `json:"tracks,omitempty"`
	Consents        []*dispatch.Consent       `json:"consents,omitempty"`
}

func (s *Server) createIncident(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	var n dispatch.NewIncident
	if err := decode(w, r, s.cfg.MaxBody, &n); err != nil {
		s.Error(w, r, err)
		return
	}
	inc, recs, created, err := s.cfg.Dispatch.CreateIncident(r.Context(), p, n)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// The same source and external_id again (a retry after a lost reply)
	// gets the same answer as the first time, as contract v1 says: 201
	// with the incident, marked as a replay; nothing new is stored.
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/api/v1/incidents/"+inc.ID)
	writeJSON(w, http.StatusCreated, incidentView{Incident: inc, Recommendations: &recs})
}

func (s *Server) incidents(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	q := r.URL.Query()
	status := dispatch.IncidentStatus(q.Get("status"))
	switch status {
	case "", dispatch.IncidentOpen, dispatch.IncidentAssigned, dispatch.IncidentClosed, dispatch.IncidentCancelled:
	default:
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, "status=%q: want open, assigned, closed or cancelled", status))
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	list, err := s.cfg.Dispatch.Incidents(r.Context(), p, dispatch.IncidentFilter{Status: status, Scope: q.Get("jurisdiction"), Limit: limit})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if list == nil {
		list = []*dispatch.Incident{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": list})
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	ctx, id := r.Context(), r.PathValue("id")
	inc, err := s.cfg.Dispatch.Incident(ctx, p, id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	as, err := s.cfg.Dispatch.Assignments(ctx, p, id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ts, err := s.cfg.Dispatch.Transitions(ctx, p, id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// The timeline: each unit's track while it was assigned to the call,
	// bounded as a page of the track API is and simplified for drawing (a
	// unit borrowed from a county outside p's scope has none here), and
	// the requests for other counties' units, oldest first.
	tracks := make([]assignmentTrack, 0, len(as))
	now := time.Now().UTC()
	for _, a := range as {
		t, err := s.assignmentTrack(ctx, p, a, now)
		if dispatch.ErrorCode(err) == dispatch.CodeForbidden {
			continue
		}
		if err != nil {
			s.Error(w, r, err)
			return
		}
		tracks = append(tracks, t)
	}
	cs, err := s.cfg.Dispatch.Consents(ctx, p, dispatch.ConsentFilter{Incident: id})
	if err != nil && !errors.Is(err, dispatch.ErrUnavailable) {
		s.Error(w, r, err)
		return
	}
	slices.Reverse(cs)
	writeJSON(w, http.StatusOK, incidentView{Incident: inc, Assignments: as, Transitions: ts, Tracks: tracks, Consents: cs})
}

// assignmentTrack is one unit's track while assigned to an incident: at
// most the first dispatch.MaxTrackSpan and dispatch.MaxTrackPage fixes of
// it, simplified to SimplifiedM metres. More says that the track goes
// on: the rest is read from /units/{unit}/track, from To or Next.
type assignmentTrack struct {
	Assignment  string     `json:"assignment"`
	Unit        string     `json:"unit"`
	From        time.Time  `json:"from"`
	To          time.Time  `json:"to"`
	SimplifiedM float64    `json:"simplified_m"`
	Fixes       []trackFix `json:"fixes"`
	More        bool       `json:"more,omitempty"`
	Next        string     `json:"next,omitempty"`
}

func (s *Server) assignmentTrack(ctx context.Context, p dispatch.Principal, a *dispatch.Assignment, now time.Time) (assignmentTrack, error) {
	from, to := a.Window(now)
	t := assignmentTrack{Assignment: a.ID, Unit: a.Unit, From: from, To: to, SimplifiedM: incidentTrackMetres, Fixes: []trackFix{}}
	if to.Sub(from) > dispatch.MaxTrackSpan {
		t.To, t.More = from.Add(dispatch.MaxTrackSpan), true
	}
	var page []telemetry.Fix
	next, err := s.cfg.Dispatch.Track(ctx, p, telemetry.TrackQuery{Unit: a.Unit, From: t.From, To: t.To, Limit: dispatch.MaxTrackPage}, func(f telemetry.Fix) error {
		page = append(page, f)
		return nil
	})
	if err != nil {
		return t, err
	}
	if !next.IsZero() {
		t.More, t.Next = true, encodeCursor(next)
	}
	for _, f := range simplified(page, incidentTrackMetres) {
		t.Fixes = append(t.Fixes, wireFix(f))
	}
	return t, nil
}

func (s *Server) recommendations(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	recs, err := s.cfg.Dispatch.Recommend(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

type assignRequest struct {
	Unit string `json:"unit"`
}

func (s *Server) assign(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	var req assignRequest
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if req.Unit == "" {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `field "unit" is required`))
		return
	}
	a, c, err := s.cfg.Dispatch.Request(r.Context(), p, r.PathValue("id"), req.Unit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if a == nil { // the owning county's consent is asked
		w.Header().Set("Location", "/api/v1/consents/"+c.ID)
		writeJSON(w, http.StatusAccepted, map[string]any{"consent": c})
		return
	}
	w.Header().Set("Location", "/api/v1/incidents/"+a.Incident)
	writeJSON(w, http.StatusCreated, assignmentView{Assignment: a, Consent: c})
}

// assignmentView is an assignment on the wire with, for a unit of
// another county, the consent record that goes with it.
type assignmentView struct {
	*dispatch.Assignment
	Consent *dispatch.Consent `json:"consent,omitempty"`
}

// endRequest ends a call: status closed or cancelled, with the outcome.
type endRequest struct {
	Status  dispatch.IncidentStatus `json:"status"`
	Outcome string                  `json:"outcome"`
}

// endIncident closes or cancels a call (PATCH /api/v1/incidents/{id}).
func (s *Server) endIncident(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	var req endRequest
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if req.Status == "" {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `field "status" is required: closed or cancelled`))
		return
	}
	inc, err := s.cfg.Dispatch.EndIncident(r.Context(), p, r.PathValue("id"), req.Status, req.Outcome)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, inc)
}

// standDown cancels one unit's assignment to a call
// (DELETE /api/v1/incidents/{id}/assignments/{aid}?reason=).
func (s *Server) standDown(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	a, err := s.cfg.Dispatch.CancelAssignment(r.Context(), p, r.PathValue("id"), r.PathValue("aid"), r.URL.Query().Get("reason"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}
