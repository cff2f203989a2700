package web

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// Websocket timing: pings keep idle sockets open through proxies (which
// commonly cut at 60 s) and detect dead peers.
const (
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = 15 * time.Second
	// sendBuffer is how many events may queue for one console before it
	// is dropped as too slow; it reconnects and gets a fresh snapshot.
	sendBuffer = 1024
	// recheckPeriod is how often a live feed checks that its session
	// still holds (one session lookup). A sign-out, a password reset, a
	// disabled user or a changed role on this server close the feed at
	// once (dispatch.EventSessions); the recheck catches what another
	// process ended: lifelined admin reset-password, another server on
	// the same database while events are not shared between servers.
	recheckPeriod = 5 * time.Second
)

// snapshot is the first message on /api/v1/live.
type snapshot struct {
	Type        string                 `json:"type"`
	Units       []dispatch.UnitState   `json:"units"`
	Incidents   []*dispatch.Incident   `json:"incidents"`
	Assignments []*dispatch.Assignment `json:"assignments"`
	ServerTime  time.Time              `json:"server_time"`
}

// heartbeat tells a console the feed is alive when nothing changes.
type heartbeat struct {
	Type       string    `json:"type"`
	ServerTime time.Time `json:"server_time"`
}

// hub serves the live websocket: a snapshot, then the deltas in scope.
type hub struct {
	s        *Server
	upgrader websocket.Upgrader

	mu     sync.Mutex
	conns  map[*websocket.Conn]context.CancelFunc
	closed bool
	wg     sync.WaitGroup

	clients prometheus.Gauge
	dropped prometheus.Counter
	recheck time.Duration // how often a feed's session is checked again
}

func newHub(s *Server, reg prometheus.Registerer) *hub {
	h := &hub{s: s, conns: map[*websocket.Conn]context.CancelFunc{}, recheck: recheckPeriod}
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 16 << 10,
		CheckOrigin:     h.checkOrigin,
	}
	h.clients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lifeline_live_clients", Help: "Websocket consoles connected to /api/v1/live."})
	h.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_live_dropped_total", Help: "Consoles disconnected for reading too slowly."})
	if reg != nil {
		reg.MustRegister(h.clients, h.dropped)
	}
	return h
}

// checkOrigin allows clients that send no Origin (not browsers), the
// server's own origin, and the configured ones. Any other browser page is
// refused, so that no website can open a console in a dispatcher's browser.
func (h *hub) checkOrigin(r *http.Request) bool { return h.s.sameOrigin(r, false) }

// serve upgrades a signed-in request to the live feed. The feed's scope
// is the principal's jurisdiction; ?jurisdiction= may narrow it, never
// widen it.
func (h *hub) serve(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	scope, err := h.s.cfg.Dispatch.Scope(p, r.URL.Query().Get("jurisdiction"))
	if err != nil {
		h.s.Error(w, r, err)
		return
	}
	token, _, _ := credentials(r) // authed has checked it
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		cancel()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(writeWait))
		conn.Close()
		return
	}
	h.conns[conn] = cancel
	h.wg.Add(1)
	h.mu.Unlock()
	h.clients.Inc()
	go func() {
		defer h.wg.Done()
		defer h.clients.Dec()
		defer func() {
			h.mu.Lock()
			delete(h.conns, conn)
			h.mu.Unlock()
			cancel()
			conn.Close()
		}()
		h.run(ctx, conn, feed{p: p, token: token, hash: dispatch.TokenHash(token), scope: scope})
	}()
}

// feed is who a console is for and what it may see.
type feed struct {
	p     dispatch.Principal
	token string
	hash  string // dispatch.TokenHash(token), to match ended sessions
	scope string // "" only for an administrator of the whole area
}

// Close codes the console acts on: sign in again, or reconnect for a
// feed that fits changed permissions.
const (
	closeSessionEnded = 4401
	closeAccessChange = 4409
)

// run feeds one console until it goes, is too slow, its session ends, or
// the server stops.
func (h *hub) run(ctx context.Context, conn *websocket.Conn, f feed) {
	// Subscribe before the snapshot so nothing between them is lost; an
	// event already in the snapshot may come again, which is harmless.
	sub := h.s.cfg.Events.Subscribe(sendBuffer)
	defer sub.Close()

	conn.SetReadLimit(4 << 10)
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	readDone := make(chan struct{})
	go func() { // consoles send nothing but control frames; read to see pongs and close
		defer close(readDone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()

	snap, err := h.snapshot(ctx, f)
	if err != nil {
		h.s.log.Error("live snapshot", "err", err)
		h.closeWith(conn, websocket.CloseInternalServerErr, "snapshot failed")
		return
	}
	if err := h.write(conn, snap); err != nil {
		return
	}
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	recheck := time.NewTicker(h.recheck)
	defer recheck.Stop()
	area := h.s.cfg.Dispatch.Area()
	for {
		select {
		case <-ctx.Done():
			h.closeWith(conn, websocket.CloseGoingAway, "server shutting down")
			return
		case <-readDone:
			return
		case <-ping.C:
			// A control ping for proxies and dead peers, and a message the
			// page can see, so a quiet but live feed is told from a frozen one.
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
			if err := h.write(conn, heartbeat{Type: "ping", ServerTime: time.Now().UTC()}); err != nil {
				return
			}
		case <-recheck.C:
			// A feed lasts no longer than its session and its permissions.
			p, err := h.s.cfg.Access.Authenticate(ctx, f.token)
			switch {
			case dispatch.ErrorCode(err) == dispatch.CodeUnauthorized:
				h.closeWith(conn, closeSessionEnded, "session ended: sign in again")
				return
			case err != nil:
				h.s.log.Warn("live: session recheck failed", "user", f.p.Name, "err", err)
			case p != f.p:
				h.closeWith(conn, closeAccessChange, "permissions changed: reconnect")
				return
			}
		case e, ok := <-sub.C:
			if !ok {
				h.dropped.Inc()
				h.closeWith(conn, websocket.CloseTryAgainLater, "too slow: reconnect for a fresh snapshot")
				return
			}
			if e.Type == dispatch.EventSessions { // internal: never sent on
				if e.Sessions.Ends(f.p.Name, f.hash) {
					h.closeWith(conn, closeSessionEnded, "session ended: sign in again")
					return
				}
				continue
			}
			// Deny by default: an event without a jurisdiction goes only
			// to a console of the whole area.
			if f.scope != "" && (e.Jurisdiction == "" || !area.Within(e.Jurisdiction, f.scope)) {
				continue
			}
			if err := h.write(conn, e); err != nil {
				return
			}
		}
	}
}

func (h *hub) snapshot(ctx context.Context, f feed) (snapshot, error) {
	d := h.s.cfg.Dispatch
	// Only the calls still in play: every console connect must not read
	// every call ever taken.
	var open []*dispatch.Incident
	for _, st := range []dispatch.IncidentStatus{dispatch.IncidentOpen, dispatch.IncidentAssigned} {
		list, err := d.Incidents(ctx, f.p, dispatch.IncidentFilter{Status: st, Scope: f.scope})
		if err != nil {
			return snapshot{}, err
		}
		open = append(open, list...)
	}
	slices.SortFunc(open, func(a, b *dispatch.Incident) int { // newest first, as the store lists them
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	active, err := d.ActiveAssignments(ctx, f.p)
	if err != nil {
		return snapshot{}, err
	}
	units, err := d.Units(f.p, f.scope)
	if err != nil {
		return snapshot{}, err
	}
	if f.scope != "" {
		inScope := map[string]bool{}
		for _, u := range units {
			inScope[u.ID] = true
		}
		for _, i := range open {
			inScope[i.ID] = true
		}
		active = slices.DeleteFunc(active, func(a *dispatch.Assignment) bool { return !inScope[a.Unit] && !inScope[a.Incident] })
	}
	if open == nil {
		open = []*dispatch.Incident{}
	}
	if active == nil {
		active = []*dispatch.Assignment{}
	}
	return snapshot{Type: "snapshot", Units: units, Incidents: open, Assignments: active, ServerTime: time.Now().UTC()}, nil
}

func (h *hub) write(conn *websocket.Conn, v any) error {
	_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
	return conn.WriteJSON(v)
}

func (h *hub) closeWith(conn *websocket.Conn, code int, text string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(writeWait))
}

// shutdown closes every console (registered with http.Server.RegisterOnShutdown).
func (h *hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	for _, cancel := range h.conns {
		cancel()
	}
	h.mu.Unlock()
}

// wait returns once every console goroutine has ended.
func (h *hub) wait() { h.wg.Wait() }
