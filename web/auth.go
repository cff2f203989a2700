package web

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// CookieName is the session cookie set by POST /api/v1/sessions.
const CookieName = "lifeline_session"

// handler is an API handler for a signed-in principal.
type handler func(w http.ResponseWriter, r *http.Request, p dispatch.Principal)

// authed lets a request through to h only with a valid session: a bearer
// token (Authorization: Bearer ...) or the session cookie. A request that
// changes something on the strength of the cookie alone must come from
// the console's own origin, so that no other site can make a signed-in
// browser act (CSRF).
func (s *Server) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, cookie, err := credentials(r)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		if cookie && !safeMethod(r.Method) && !s.sameOrigin(r, true) {
			s.Error(w, r, dispatch.Errorf(dispatch.CodeForbidden, "cross-origin request refused: a cookie-authenticated change must come from the console's own origin"))
			return
		}
		p, err := s.cfg.Access.Authenticate(r.Context(), token)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		h(w, r, p)
	}
}

// credentials returns the session token of r and whether it came in the cookie.
func credentials(r *http.Request) (token string, cookie bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", false, dispatch.Errorf(dispatch.CodeUnauthorized, "Authorization header: want Bearer <token>")
		}
		return tok, false, nil
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, dispatch.Errorf(dispatch.CodeUnauthorized, "sign in first: POST /api/v1/sessions, then send Authorization: Bearer <token>")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether a browser request comes from the server's own
// origin or an allowed one, by its Origin header or else its Referer. With
// neither, it is what strict asks (browsers send Origin on every
// cross-origin request and on every POST).
func (s *Server) sameOrigin(r *http.Request, strict bool) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return !strict
		}
		u, err := url.Parse(ref)
		if err != nil {
			return false
		}
		origin = u.Scheme + "://" + u.Host
	}
	if slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	return r.TLS == nil || u.Scheme == "https"
}

// remoteHost is the client's address without the port: the TCP peer, or,
// when the peer is one of the configured trusted proxies, the nearest
// address in X-Forwarded-For that is not itself a trusted proxy. Behind a
// reverse proxy every client would otherwise share the proxy's address,
// and one user's failed logins would lock out the whole control room.
// X-Forwarded-For from anyone else is ignored: it is client-supplied.
func (s *Server) remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if net.ParseIP(hop) == nil {
			break // a malformed hop: trust nothing before it
		}
		if !s.trusted(hop) {
			return hop
		}
	}
	return host
}

func (s *Server) trusted(addr string) bool {
	ip := net.ParseIP(addr)
	if ip == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type sessionView struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// login opens a session: the token in the body (for API clients) and in
// an HttpOnly cookie (for the console, whose script never sees it).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(r, false) { // a page elsewhere must not sign a browser in
		s.Error(w, r, dispatch.Errorf(dispatch.CodeForbidden, "cross-origin sign-in refused"))
		return
	}
	var req loginRequest
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if req.Username == "" || req.Password == "" {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `fields "username" and "password" are required`))
		return
	}
	token, sess, err := s.cfg.Access.Login(r.Context(), req.Username, req.Password, s.remoteHost(r))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/", Expires: sess.ExpiresAt,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusCreated, sessionView{Token: token, ExpiresAt: sess.ExpiresAt})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ dispatch.Principal) {
	token, _, _ := credentials(r) // authed has checked it
	if err := s.cfg.Access.Logout(r.Context(), token); err != nil {
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// meView is who is signed in.
type meView struct {
	Username         string        `json:"username"`
	Role             dispatch.Role `json:"role"`
	Jurisdiction     string        `json:"jurisdiction"`
	JurisdictionName string        `json:"jurisdiction_name,omitempty"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	v := meView{Username: p.Name, Role: p.Role, Jurisdiction: p.Jurisdiction}
	if j, ok := s.cfg.Dispatch.Area().Jurisdiction(p.Jurisdiction); ok {
		v.JurisdictionName = j.Name
	}
	writeJSON(w, http.StatusOK, v)
}

type userRequest struct {
	Username     string        `json:"username"`
	Password     string        `json:"password"`
	Role         dispatch.Role `json:"role"`
	Jurisdiction string        `json:"jurisdiction"`
}

// adminOnly refuses anyone but an administrator before a body is read.
func adminOnly(p dispatch.Principal) error {
	if p.Role != dispatch.RoleAdmin {
		return dispatch.Errorf(dispatch.CodeForbidden, "administrators only")
	}
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	if err := adminOnly(p); err != nil {
		s.Error(w, r, err)
		return
	}
	var req userRequest
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	u, err := s.cfg.Access.CreateUser(r.Context(), p, req.Username, req.Password, req.Role, req.Jurisdiction)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+url.PathEscape(u.Username))
	writeJSON(w, http.StatusCreated, u)
}

// userUpdate changes a user: role and jurisdiction together, or the
// disabled flag, or both.
type userUpdate struct {
	Role         *dispatch.Role `json:"role"`
	Jurisdiction *string        `json:"jurisdiction"`
	Disabled     *bool          `json:"disabled"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	if err := adminOnly(p); err != nil {
		s.Error(w, r, err)
		return
	}
	var req userUpdate
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if (req.Role == nil) != (req.Jurisdiction == nil) {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `give "role" and "jurisdiction" together ("" for a whole-area admin)`))
		return
	}
	if req.Role == nil && req.Disabled == nil {
		s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, `nothing to change: give "role" and "jurisdiction", or "disabled"`))
		return
	}
	name := r.PathValue("username")
	var u *dispatch.User
	var err error
	if req.Role != nil {
		if u, err = s.cfg.Access.SetRole(r.Context(), p, name, *req.Role, *req.Jurisdiction); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	if req.Disabled != nil {
		if u, err = s.cfg.Access.SetDisabled(r.Context(), p, name, *req.Disabled); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.Error(w, r, dispatch.Errorf(dispatch.CodeInvalid, "after=%q: want a sequence number", v))
			return
		}
		after = n
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	entries, err := s.cfg.Access.AuditLog(r.Context(), p, after, limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if entries == nil {
		entries = []dispatch.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

func (s *Server) users(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	list, err := s.cfg.Access.Users(r.Context(), p)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if list == nil {
		list = []*dispatch.User{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": list})
}

// unitCredentials gives a unit's terminal a new broker password, shown once.
func (s *Server) unitCredentials(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	if err := adminOnly(p); err != nil {
		s.Error(w, r, err)
		return
	}
	id := r.PathValue("id")
	pw, err := s.cfg.Access.RotateUnitCredentials(r.Context(), p, id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"username": id, "password": pw})
}
