package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// Config holds what a Service is made of. Area, Store and Events are required.
type Config struct {
	Area     *Area
	Store    Store
	Tracks   Tracks    // position history to read; nil when none is kept
	Events   Publisher // where every change of the picture goes
	Commands Commander // nil when no broker is connected (commands are logged)
	ETA      geo.Estimator
	Radii    geo.RadiusPolicy
	// Picture is the live picture of the fleet; default a LocalPicture
	// of the area's units on Index.
	Picture Picture
	Index   geo.Index // the unit position index of the default picture; default geo.NewAdaptiveGrid(), which sizes its cells to the fleet
	// Board holds the calls in play; default a LocalBoard, filled from
	// the record at start.
	Board Board
	// StaleAfter is how long ago the server may have received a unit's
	// newest fix before the unit is no longer recommended (by the server's
	// clock: a terminal's may be off); default 90s (terminals report every
	// 5-30 s).
	StaleAfter time.Duration
	// Candidates is how many units a recommendation lists; default 5.
	Candidates int
	// Auditor records who took which call and assigned which unit; nil
	// only logs the entries.
	Auditor Auditor
	// Consents keeps requests to borrow another county's units and the
	// counties' consent policies; default Store, when it keeps them. With
	// none, no consent can be asked.
	Consents Consents
	// ConsentTimeout is how long a consent request waits for an answer;
	// default DefaultConsentTimeout.
	ConsentTimeout time.Duration
	// Registry is where the engine's metrics go; may be nil.
	Registry prometheus.Registerer
	Now      func() time.Time
	Logger   *slog.Logger

	// CommandTTL is how long a command waits in the outbox for its
	// terminal at most; default DefaultCommandTTL.
	CommandTTL time.Duration
	// CourierEvery is how often the courier sweeps the outbox; default
	// DefaultCourierEvery.
	CourierEvery time.Duration
	// RedeliverOnOnline makes a terminal's online report send its pending
	// commands again: for an external broker, where the server does not
	// see terminals connect (the embedded broker calls Courier.Ready).
	RedeliverOnOnline bool
	// Infer is what the engine does with a status telemetry shows: offer
	// it to the dispatchers (the default), apply it, or nothing.
	Infer InferConfig
}

// Service is the dispatch engine: it keeps the live picture of the fleet
// from telemetry, takes calls, ranks units and assigns them.
type Service struct {
	area    *Area
	store   Store
	tracks  Tracks
	events  Publisher
	cmds    Commander
	eta     geo.Estimator
	radii   geo.RadiusPolicy
	pic     Picture
	ground  *ground   // derived from the area once, for ranking
	refused *refusals // the units that refused each call in play
	board   Board
	stale   time.Duration
	top     int
	now     func() time.Time
	log     *slog.Logger
	audit   auditLog
	metrics *metrics

	commandTTL        time.Duration
	courier           *Courier
	redeliverOnOnline bool
	infer             *inferrer
	consents          Consents
	consentTTL        time.Duration
	consentAsked      chan struct{} // wakes the expiry duty for a new request
	cover             coverHolder   // the coverage of the area, laid out on first use

	// decide serialises the decisions of this process (assignments,
	// presses, acks), so that each is decided from the state the one
	// before it left; across processes the record's versions do.
	decide sync.Mutex
}

var (
	_ telemetry.Sink     = (*Service)(nil)
	_ telemetry.Registry = (*Service)(nil)
)

// NewService builds the live picture from the area's unit registry and the
// store's active assignments.
func NewService(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Area == nil || cfg.Store == nil || cfg.Events == nil {
		return nil, fmt.Errorf("dispatch: Area, Store and Events are required")
	}
	var err error
	s := &Service{
		area: cfg.Area, store: cfg.Store, tracks: cfg.Tracks, events: cfg.Events, cmds: cfg.Commands,
		eta: cfg.ETA, radii: cfg.Radii, pic: cfg.Picture, board: cfg.Board, stale: cfg.StaleAfter, top: cfg.Candidates,
		now: cfg.Now, log: cfg.Logger, metrics: newMetrics(cfg.Registry),
		commandTTL: cfg.CommandTTL, redeliverOnOnline: cfg.RedeliverOnOnline,
		consents: cfg.Consents, consentTTL: cfg.ConsentTimeout, consentAsked: make(chan struct{}, 1),
	}
	if s.commandTTL <= 0 {
		s.commandTTL = DefaultCommandTTL
	}
	s.courier = newCourier(s, cfg.CourierEvery)
	if s.consents == nil {
		s.consents, _ = cfg.Store.(Consents)
	}
	if s.consentTTL <= 0 {
		s.consentTTL = DefaultConsentTimeout
	}
	if s.infer, err = newInferrer(cfg.Infer); err != nil {
		return nil, err
	}
	if s.eta == nil {
		s.eta = geo.DefaultETA
	}
	if s.radii == (geo.RadiusPolicy{}) {
		s.radii = geo.DefaultRadii
	}
	if s.pic == nil {
		s.pic = NewLocalPicture(cfg.Area.Units, cfg.Index)
	}
	s.ground, s.refused = newGround(cfg.Area, s.radii), newRefusals()
	if s.board == nil {
		s.board = NewLocalBoard()
	}
	if s.stale <= 0 {
		s.stale = 90 * time.Second
	}
	if s.top <= 0 {
		s.top = 5
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "dispatch")
	s.audit = auditLog{to: cfg.Auditor, log: s.log, now: s.now}
	if err := s.restore(ctx); err != nil {
		return nil, fmt.Errorf("dispatch: restore the picture: %w", err)
	}
	if err := s.restoreBoard(ctx); err != nil {
		return nil, fmt.Errorf("dispatch: restore the calls in play: %w", err)
	}
	return s, nil
}

// restore rebuilds the live picture from the record, so that a restart
// shows what was there before: each unit's status and assignment and its
// last known position, and the units that refused each call in play.
// Terminals report online again when they reconnect; until then a
// restored unit is offline.
func (s *Service) restore(ctx context.Context) error {
	if err := s.refused.load(ctx, s.store); err != nil {
		return err
	}
	recs, err := s.store.UnitRecords(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		s.pic.Update(r.Unit, func(st *UnitState) bool { st.setRecord(r); return true })
	}
	if s.tracks == nil {
		return nil
	}
	fixes, err := s.tracks.Latest(ctx)
	if err != nil {
		return err
	}
	for _, f := range fixes {
		s.pic.Update(f.Unit, func(st *UnitState) bool {
			st.Position = &Position{Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, Heading: f.Heading, HDOP: f.HDOP, Seq: f.Seq, Time: f.Time, Received: f.Received}
			st.LastSeen = f.Received
			return true
		})
	}
	return nil
}

// Area returns the area the service dispatches in.
func (s *Service) Area() *Area { return s.area }

// Known reports whether unit is in the registry (telemetry.Registry).
func (s *Service) Known(unit string) bool {
	_, ok := s.pic.Unit(unit)
	return ok
}

// view returns st as a reader sees it now: stale when the server received
// its newest fix longer ago than the service's limit.
func (s *Service) view(st UnitState, now time.Time) UnitState {
	st.Stale = st.Position == nil || now.Sub(st.Position.seen()) > s.stale
	return st
}

// update applies fn to unit id in the picture and publishes the result.
func (s *Service) update(id string, fn func(st *UnitState) bool) (UnitState, bool) {
	st, ok := s.pic.Update(id, fn)
	if !ok {
		return UnitState{}, false
	}
	v := s.view(st, s.now())
	s.events.Publish(Event{Type: EventUnit, Unit: &v, Jurisdiction: v.Jurisdiction})
	return v, true
}
