package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
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
	// recheckPeriod is how often a live feed checks that its session
	// still holds (one session lookup). A sign-out, a password reset, a
	// disabled user or a changed role on this server close the feed at
	// once (dispatch.EventSessions); the recheck catches what another
	// process ended: lifelined admin reset-password, another server on
	// the same database while events are not shared between servers.
	recheckPeriod = 5 * time.Second
	// Live feeds allowed at once per session (a browser's tabs share its
	// cookie) and per user, by default. Each feed costs a goroutine pair,
	// buffers and a snapshot; 3,000 on one token took a gigabyte.
	defaultLivePerSession = 4
	defaultLivePerUser    = 16
	// snapshotTimeout bounds a snapshot build.
	snapshotTimeout = 10 * time.Second
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
	snaps    *snapshots

	mu         sync.Mutex
	conns      map[*console]struct{}
	bySession  map[string]int // live feeds per session token hash
	byUser     map[string]int // live feeds per user
	perSession int            // at most, per session
	perUser    int            // at most, per user
	closed     bool
	fan        *fan               // nil until the first console
	stopFan    context.CancelFunc // ends the fan
	wg         sync.WaitGroup     // the consoles and the fan
	consoles   atomic.Int64       // len(conns), read without mu
	window     time.Duration      // how long unit states gather

	clients   prometheus.Gauge
	dropped   prometheus.Counter
	coalesced prometheus.Counter
	refused   *prometheus.CounterVec
	snapshots *prometheus.CounterVec
	recheck   time.Duration // how often a feed's session is checked again
}

func newHub(s *Server, reg prometheus.Registerer) *hub {
	h := &hub{
		s: s, snaps: newSnapshots(), recheck: recheckPeriod, window: defaultWindow,
		conns: map[*console]struct{}{}, bySession: map[string]int{}, byUser: map[string]int{},
		perSession: cmp.Or(s.cfg.LivePerSession, defaultLivePerSession),
		perUser:    cmp.Or(s.cfg.LivePerUser, defaultLivePerUser),
	}
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 16 << 10,
		CheckOrigin:     h.checkOrigin,
		// Browsers ask for permessage-deflate: a snapshot and each batch
		// are compressed once (websocket.PreparedMessage) for every
		// console that shares them.
		EnableCompression: true,
	}
	h.clients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lifeline_live_clients", Help: "Websocket consoles connected to /api/v1/live."})
	h.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "lifeline_live_dropped_total", Help: "Consoles disconnected for reading too slowly."})
	h.coalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lifeline_live_coalesced_total",
		Help: "Unit states replaced by a newer state of the same unit before they were sent to a console.",
	})
	h.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lifeline_live_refused_total",
		Help: "Live feeds closed at once (4429) for holding too many: by=session or user.",
	}, []string{"by"})
	h.snapshots = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lifeline_live_snapshots_total",
		Help: "Snapshots sent to consoles: how=built for this console, or shared with consoles that connected together.",
	}, []string{"how"})
	for _, l := range []string{"session", "user"} {
		h.refused.WithLabelValues(l)
	}
	for _, l := range []string{"built", "shared"} {
		h.snapshots.WithLabelValues(l)
	}
	if reg != nil {
		reg.MustRegister(h.clients, h.dropped, h.coalesced, h.refused, h.snapshots)
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
	f := feed{p: p, token: token, hash: dispatch.TokenHash(token), scope: scope}
	// Over a limit the feed is closed right after the upgrade, with a
	// code the console can read: a browser sees no status or body of a
	// refused upgrade, only that it failed.
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &console{conn: conn, f: f, cancel: cancel, wake: make(chan struct{}, 1)}
	if code, text := h.admit(c); code != 0 {
		cancel()
		h.closeWith(conn, code, text)
		conn.Close()
		return
	}
	h.clients.Inc()
	go func() {
		defer h.wg.Done()
		defer h.clients.Dec()
		defer func() {
			h.leave(c)
			cancel()
			conn.Close()
		}()
		h.run(ctx, c)
	}()
}

// admit registers a feed and joins it to the fan, unless the server is
// closing or the feed's session or user already holds as many as
// allowed; then it returns the close code and reason.
func (h *hub) admit(c *console) (code int, text string) {
	f := c.f
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return websocket.CloseGoingAway, "server shutting down"
	case h.bySession[f.hash] >= h.perSession:
		h.refused.WithLabelValues("session").Inc()
		return closeTooMany, fmt.Sprintf("too many consoles: %d open on this sign-in; close one", h.perSession)
	case h.byUser[f.p.Name] >= h.perUser:
		h.refused.WithLabelValues("user").Inc()
		return closeTooMany, fmt.Sprintf("too many consoles: %d open for %s; close one", h.perUser, f.p.Name)
	}
	if h.fan == nil {
		h.startFan()
	}
	h.conns[c] = struct{}{}
	h.consoles.Add(1)
	h.fan.join(c)
	h.bySession[f.hash]++
	h.byUser[f.p.Name]++
	h.wg.Add(1)
	return 0, ""
}

// startFan subscribes the fan to the events, before the first console
// joins, and runs it until the hub shuts down. The caller holds h.mu.
func (h *hub) startFan() {
	ctx, cancel := context.WithCancel(context.Background())
	h.fan, h.stopFan = &fan{h: h, window: h.window, groups: map[string]*group{}}, cancel
	sub := h.s.cfg.Events.Subscribe(fanBuffer)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.fan.run(ctx, sub)
	}()
}

// leave forgets a feed that has ended.
func (h *hub) leave(c *console) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; !ok {
		return
	}
	delete(h.conns, c)
	h.consoles.Add(-1)
	h.fan.leave(c)
	f := c.f
	if h.bySession[f.hash]--; h.bySession[f.hash] <= 0 {
		delete(h.bySession, f.hash)
	}
	if h.byUser[f.p.Name]--; h.byUser[f.p.Name] <= 0 {
		delete(h.byUser, f.p.Name)
	}
}

// feed is who a console is for and what it may see.
type feed struct {
	p     dispatch.Principal
	token string
	hash  string // dispatch.TokenHash(token), to match ended sessions
	scope string // "" only for an administrator of the whole area
}

// Close codes the console acts on: sign in again, reconnect for a feed
// that fits changed permissions, or close another console first.
const (
	closeSessionEnded = 4401
	closeAccessChange = 4409
	closeTooMany      = 4429
)

// run feeds one console until it goes, stops reading, its session ends,
// or the server stops. It joined the fan before the snapshot (admit), so
// nothing between them is lost; an event already in the snapshot may
// come again, which is harmless.
func (h *hub) run(ctx context.Context, c *console) {
	conn, f := c.conn, c.f
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

	snap, shared, err := h.snaps.get(ctx, f.snapshotKey(), func() (*websocket.PreparedMessage, error) {
		// Not the console's context: others may share the build.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snapshotTimeout)
		defer cancel()
		return h.snapshot(bctx, f)
	})
	if err != nil {
		if ctx.Err() == nil {
			h.s.log.Error("live snapshot", "err", err)
			h.closeWith(conn, websocket.CloseInternalServerErr, "snapshot failed")
		} else {
			h.ended(c)
		}
		return
	}
	how := "built"
	if shared {
		how = "shared"
	}
	h.snapshots.WithLabelValues(how).Inc()
	if !h.writeFrame(conn, func() error { return conn.WritePreparedMessage(snap) }) {
		return
	}
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	recheck := time.NewTicker(h.recheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			h.ended(c)
			return
		case <-readDone:
			return
		case <-ping.C:
			// A control ping for proxies and dead peers, and a message the
			// page can see, so a quiet but live feed is told from a frozen one.
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
			b, _ := json.Marshal(heartbeat{Type: "ping", ServerTime: time.Now().UTC()})
			if !h.writeFrame(conn, func() error { return conn.WriteMessage(websocket.TextMessage, b) }) {
				return
			}
		case <-recheck.C:
			// A feed lasts no longer than its session and its permissions;
			// the record is read, so that what ended them beside this
			// server (lifelined admin) is found too.
			p, err := h.s.cfg.Access.Recheck(ctx, f.token)
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
		case <-c.wake:
			queue, own, replaced := c.take()
			if replaced > 0 {
				h.coalesced.Add(float64(replaced))
			}
			if own != nil {
				frame := own.frame()
				if !h.writeFrame(conn, func() error { return conn.WriteMessage(websocket.TextMessage, frame) }) {
					return
				}
				continue
			}
			for _, s := range queue {
				if !h.writeFrame(conn, func() error { return conn.WritePreparedMessage(s.msg) }) {
					return
				}
			}
		}
	}
}

// writeFrame writes one frame to conn within writeWait and reports
// whether it went; a console that takes longer has stopped reading, and
// is dropped.
func (h *hub) writeFrame(conn *websocket.Conn, write func() error) bool {
	_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := write(); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			h.dropped.Inc()
		}
		return false
	}
	return true
}

// ended closes c's feed with the reason it was ended for: its session
// ended, it fell too far behind, or the server stops.
func (h *hub) ended(c *console) {
	code, reason := c.ending()
	if code == 0 {
		code, reason = websocket.CloseGoingAway, "server shutting down"
	}
	if code == websocket.CloseTryAgainLater {
		h.dropped.Inc()
	}
	h.closeWith(c.conn, code, reason)
}

// snapshotKey is what a feed's snapshot depends on: its scope, and what
// the principal may see (an administrator of the whole area sees every
// assignment, anyone else those touching its jurisdiction). Feeds with
// one key may share one snapshot.
func (f feed) snapshotKey() string {
	return f.scope + "\x00" + string(f.p.Role) + "\x00" + f.p.Jurisdiction
}

// snapshot reads the picture in f's scope and encodes it once, to be
// written to every console that shares it.
func (h *hub) snapshot(ctx context.Context, f feed) (*websocket.PreparedMessage, error) {
	snap, err := h.readSnapshot(ctx, f)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return websocket.NewPreparedMessage(websocket.TextMessage, b)
}

func (h *hub) readSnapshot(ctx context.Context, f feed) (snapshot, error) {
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

func (h *hub) closeWith(conn *websocket.Conn, code int, text string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(writeWait))
}

// shutdown closes every console and stops the fan (registered with
// http.Server.RegisterOnShutdown).
func (h *hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	for c := range h.conns {
		c.end(websocket.CloseGoingAway, "server shutting down")
	}
	if h.stopFan != nil {
		h.stopFan()
	}
	h.mu.Unlock()
}

// wait returns once every console goroutine and the fan have ended.
func (h *hub) wait() { h.wg.Wait() }
