package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
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
	Index    geo.Index // the unit position index; default geo.NewGrid(DefaultCellMetres)
	// StaleAfter is how old a unit's newest fix may be before the unit is
	// no longer recommended; default 90s (terminals report every 5-30 s).
	StaleAfter time.Duration
	// Candidates is how many units a recommendation lists; default 5.
	Candidates int
	// Auditor records who took which call and assigned which unit; nil
	// only logs the entries.
	Auditor Auditor
	Now     func() time.Time
	Logger  *slog.Logger
}

// DefaultCellMetres is the grid cell size of the unit index, chosen by
// benchmark (docs/BENCHMARKS.md).
const DefaultCellMetres = 2000

// Service is the dispatch engine: it keeps the live picture of the fleet
// from telemetry, takes calls, ranks units and assigns them.
type Service struct {
	area   *Area
	store  Store
	tracks Tracks
	events Publisher
	cmds   Commander
	eta    geo.Estimator
	radii  geo.RadiusPolicy
	index  geo.Index
	stale  time.Duration
	top    int
	now    func() time.Time
	log    *slog.Logger
	audit  auditLog

	mu       sync.RWMutex
	units    map[string]*UnitState
	statusAt map[string]time.Time // time of the last crew status press per unit
	assignMu sync.Mutex           // serialises assignment decisions in this process
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
	s := &Service{
		area: cfg.Area, store: cfg.Store, tracks: cfg.Tracks, events: cfg.Events, cmds: cfg.Commands,
		eta: cfg.ETA, radii: cfg.Radii, index: cfg.Index, stale: cfg.StaleAfter, top: cfg.Candidates,
		now: cfg.Now, log: cfg.Logger,
		units: map[string]*UnitState{}, statusAt: map[string]time.Time{},
	}
	if s.eta == nil {
		s.eta = geo.DefaultETA
	}
	if s.radii == (geo.RadiusPolicy{}) {
		s.radii = geo.DefaultRadii
	}
	if s.index == nil {
		s.index = geo.NewGrid(DefaultCellMetres)
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
	for _, u := range cfg.Area.Units {
		s.units[u.ID] = &UnitState{Unit: u, Status: Available}
	}
	if err := s.restore(ctx); err != nil {
		return nil, fmt.Errorf("dispatch: restore the picture: %w", err)
	}
	return s, nil
}

// restore rebuilds the live picture from the record, so that a restart
// shows what was there before: each unit's last status and assignment and
// its last known position. Terminals report online again when they
// reconnect; until then a restored unit is offline.
func (s *Service) restore(ctx context.Context) error {
	last, err := s.store.LastTransitions(ctx)
	if err != nil {
		return err
	}
	for _, t := range last {
		if st, ok := s.units[t.Unit]; ok && t.To.Valid() {
			st.Status = t.To
			if t.Source == "terminal" {
				s.statusAt[t.Unit] = t.At
			}
		}
	}
	active, err := s.store.ActiveAssignments(ctx)
	if err != nil {
		return err
	}
	for _, a := range active {
		if st, ok := s.units[a.Unit]; ok {
			st.Incident, st.Assignment = a.Incident, a.ID
			if !st.Status.Committed() {
				st.Status = Dispatched
			}
		}
	}
	if s.tracks == nil {
		return nil
	}
	fixes, err := s.tracks.Latest(ctx)
	if err != nil {
		return err
	}
	for _, f := range fixes {
		if st, ok := s.units[f.Unit]; ok {
			st.Position = &Position{Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, Heading: f.Heading, HDOP: f.HDOP, Seq: f.Seq, Time: f.Time}
			st.LastSeen = f.Received
			s.index.Set(f.Unit, f.Point())
		}
	}
	return nil
}

// Area returns the area the service dispatches in.
func (s *Service) Area() *Area { return s.area }

// Known reports whether unit is in the registry (telemetry.Registry).
func (s *Service) Known(unit string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.units[unit]
	return ok
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
