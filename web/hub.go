package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
}

func newHub(s *Server, reg prometheus.Registerer) *hub {
	h := &hub{s: s, conns: map[*websocket.Conn]context.CancelFunc{}}
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
func (h *hub) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(h.s.cfg.AllowedOrigins, origin)
}

func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	scope, err := h.s.scope(r)
	if err != nil {
		Error(w, r, h.s.log, err)
		return
	}
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
		h.run(ctx, conn, scope)
	}()
}

// run feeds one console until it goes, is too slow, or the server stops.
func (h *hub) run(ctx context.Context, conn *websocket.Conn, scope string) {
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

	snap, err := h.snapshot(ctx, scope)
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
		case e, ok := <-sub.C:
			if !ok {
				h.dropped.Inc()
				h.closeWith(conn, websocket.CloseTryAgainLater, "too slow: reconnect for a fresh snapshot")
				return
			}
			if scope != "" && e.Jurisdiction != "" && !area.Within(e.Jurisdiction, scope) {
				continue
			}
			if err := h.write(conn, e); err != nil {
				return
			}
		}
	}
}

func (h *hub) snapshot(ctx context.Context, scope string) (snapshot, error) {
	d := h.s.cfg.Dispatch
	open, err := d.Incidents(ctx, dispatch.IncidentFilter{Scope: scope})
	if err != nil {
		return snapshot{}, err
	}
	open = slices.DeleteFunc(open, func(i *dispatch.Incident) bool {
		return i.Status == dispatch.IncidentClosed || i.Status == dispatch.IncidentCancelled
	})
	active, err := d.ActiveAssignments(ctx)
	if err != nil {
		return snapshot{}, err
	}
	units := d.Units(scope)
	if scope != "" {
		inScope := map[string]bool{}
		for _, u := range units {
			inScope[u.ID] = true
		}
		active = slices.DeleteFunc(active, func(a *dispatch.Assignment) bool { return !inScope[a.Unit] })
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
