package dispatch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// Commander sends a command to a unit's terminal (telemetry/mqtt implements it).
type Commander interface {
	Send(ctx context.Context, unit string, cmd telemetry.Command) error
}

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

// view returns a copy of st safe to hand out; the caller holds s.mu.
func (s *Service) view(st *UnitState, now time.Time) UnitState {
	v := *st
	v.Stale = v.Position == nil || now.Sub(v.Position.Time) > s.stale
	return v
}

// update applies fn to unit id under the lock and publishes the result.
func (s *Service) update(id string, fn func(st *UnitState) bool) (UnitState, bool) {
	now := s.now()
	s.mu.Lock()
	st, ok := s.units[id]
	if !ok || !fn(st) {
		s.mu.Unlock()
		return UnitState{}, false
	}
	v := s.view(st, now)
	s.mu.Unlock()
	s.events.Publish(Event{Type: EventUnit, Unit: &v, Jurisdiction: v.Jurisdiction})
	return v, true
}

// Positions moves the unit to its newest fix (telemetry.Sink). History is
// telemetry's to record (telemetry.Recorder), before this is called.
func (s *Service) Positions(ctx context.Context, p telemetry.Positions) error {
	if p.Latest == nil {
		return nil
	}
	f := *p.Latest
	pos := &Position{Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, Heading: f.Heading, HDOP: f.HDOP, Seq: f.Seq, Time: f.Time}
	s.update(p.Unit, func(st *UnitState) bool {
		if st.Position != nil && !f.Time.After(st.Position.Time) {
			return false
		}
		st.Position, st.Online = pos, true
		st.LastSeen = later(st.LastSeen, f.Received)
		s.index.Set(st.ID, f.Point())
		return true
	})
	return nil
}

// Video records a terminal's video status (telemetry.Sink).
func (s *Service) Video(ctx context.Context, v telemetry.Video) error {
	vs := &VideoState{Uplink: v.Uplink, Cameras: v.Cameras, Time: v.Time}
	s.update(v.Unit, func(st *UnitState) bool {
		if st.Video != nil && v.Time.Before(st.Video.Time) {
			return false
		}
		st.Video = vs
		return true
	})
	return nil
}

// Presence records a terminal going online or offline (telemetry.Sink).
func (s *Service) Presence(ctx context.Context, p telemetry.Presence) error {
	s.update(p.Unit, func(st *UnitState) bool {
		if st.Online == p.Online {
			return false
		}
		st.Online = p.Online
		st.LastSeen = later(st.LastSeen, p.Time)
		return true
	})
	return nil
}

// Scope resolves the jurisdiction a request of by works in: want narrows
// by's own jurisdiction ("" keeps it, and is the whole area for an
// administrator of the whole area). A want outside by's jurisdiction is
// forbidden, one not in the area invalid.
func (s *Service) Scope(by Principal, want string) (string, error) {
	if err := s.allowed(by); err != nil {
		return "", err
	}
	if want == "" {
		return by.Jurisdiction, nil
	}
	if _, ok := s.area.Jurisdiction(want); !ok {
		return "", Errorf(CodeInvalid, "jurisdiction %q is not in the area", want)
	}
	if !by.Sees(s.area, want) {
		return "", Errorf(CodeForbidden, "jurisdiction %s is outside yours", want)
	}
	return want, nil
}

// allowed refuses principals that can see nothing: an unknown role, or
// no jurisdiction for anyone but an administrator (deny by default).
func (s *Service) allowed(by Principal) error {
	if !by.Role.Valid() || (by.Jurisdiction == "" && by.Role != RoleAdmin) {
		return Errorf(CodeForbidden, "no access: unknown role or no jurisdiction")
	}
	return nil
}

// inScope reports whether jurisdiction jur lies in scope ("" is everything).
func (s *Service) inScope(jur, scope string) bool {
	return scope == "" || s.area.Within(jur, scope)
}

// Units returns the live picture of the units by may see, narrowed to
// scope ("" for all of by's jurisdiction).
func (s *Service) Units(by Principal, scope string) ([]UnitState, error) {
	scope, err := s.Scope(by, scope)
	if err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.RLock()
	out := make([]UnitState, 0, len(s.units))
	for _, st := range s.units {
		if s.inScope(st.Jurisdiction, scope) {
			out = append(out, s.view(st, now))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b UnitState) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Unit returns the live picture of one unit by may see.
func (s *Service) Unit(by Principal, id string) (UnitState, error) {
	if err := s.allowed(by); err != nil {
		return UnitState{}, err
	}
	st, err := s.unit(id)
	if err != nil {
		return UnitState{}, err
	}
	if !by.Sees(s.area, st.Jurisdiction) {
		return UnitState{}, Errorf(CodeForbidden, "unit %s is outside your jurisdiction", id)
	}
	return st, nil
}

// unit returns the live picture of one unit, for the service itself.
func (s *Service) unit(id string) (UnitState, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.units[id]
	if !ok {
		return UnitState{}, Errorf(CodeNotFound, "unit %q not found", id)
	}
	return s.view(st, now), nil
}

// Track returns the recorded positions of a unit by may see between from and to.
func (s *Service) Track(ctx context.Context, by Principal, unit string, from, to time.Time) ([]telemetry.Fix, error) {
	if _, err := s.Unit(by, unit); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, Errorf(CodeInvalid, "track: to %s is before from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if s.tracks == nil {
		return nil, Errorf(CodeUnavailable, "no position history is kept")
	}
	return s.tracks.Track(ctx, unit, from, to)
}

// newID returns a readable, unique id such as INC-20261123-080001-3f9a1c.
func newID(prefix string, now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// CreateIncident takes a call from by: it locates it in a jurisdiction and
// zone, stores it (idempotent on source and external id) and ranks the
// units. A call outside by's jurisdiction is forbidden. created is false
// when the call had been taken before.
func (s *Service) CreateIncident(ctx context.Context, by Principal, n NewIncident) (*Incident, Recommendations, bool, error) {
	if err := s.allowed(by); err != nil {
		return nil, Recommendations{}, false, err
	}
	if err := n.Validate(); err != nil {
		return nil, Recommendations{}, false, err
	}
	loc := orbPoint(n.Location)
	jur, zone, ok := s.area.Locate(loc)
	if !ok {
		return nil, Recommendations{}, false, Errorf(CodeInvalid, "location %.6f,%.6f is outside every jurisdiction of %s", n.Location.Lat, n.Location.Lon, s.area.Name)
	}
	if !by.Sees(s.area, jur.ID) {
		return nil, Recommendations{}, false, Errorf(CodeForbidden, "location %.6f,%.6f lies in jurisdiction %s, outside yours", n.Location.Lat, n.Location.Lon, jur.ID)
	}
	now := s.now().UTC()
	inc := &Incident{
		ID: newID("INC", now), ExternalID: n.ExternalID, Source: n.Source,
		Location: n.Location, Address: n.Address, Priority: n.Priority, Category: n.Category,
		Jurisdiction: jur.ID, Zone: zone, RadiusM: s.radii.Steps(zone)[0],
		Status: IncidentOpen, CreatedAt: now, UpdatedAt: now,
	}
	got, created, err := s.store.CreateIncident(ctx, inc)
	if err != nil {
		return nil, Recommendations{}, false, fmt.Errorf("create incident: %w", err)
	}
	if !created && !by.Sees(s.area, got.Jurisdiction) {
		// The same source and external id name another jurisdiction's call.
		return nil, Recommendations{}, false, Errorf(CodeForbidden, "external_id %q names a call outside your jurisdiction", n.ExternalID)
	}
	if created {
		s.audit.append(ctx, by.Name, AuditIncident, got.ID, map[string]any{
			"jurisdiction": got.Jurisdiction, "priority": got.Priority, "category": got.Category, "source": got.Source, "external_id": got.ExternalID,
		})
		s.events.Publish(Event{Type: EventIncident, Incident: got, Jurisdiction: got.Jurisdiction})
	}
	return got, s.rank(got), created, nil
}

// Incident returns one incident by may see.
func (s *Service) Incident(ctx context.Context, by Principal, id string) (*Incident, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	inc, err := s.store.Incident(ctx, id)
	if err != nil {
		return nil, err
	}
	if !by.Sees(s.area, inc.Jurisdiction) {
		return nil, Errorf(CodeForbidden, "incident %s is outside your jurisdiction", id)
	}
	return inc, nil
}

// Incidents lists the incidents by may see, narrowed to f.Scope and what
// lies beneath it ("" for all of by's jurisdiction).
func (s *Service) Incidents(ctx context.Context, by Principal, f IncidentFilter) ([]*Incident, error) {
	scope, err := s.Scope(by, f.Scope)
	if err != nil {
		return nil, err
	}
	all, err := s.store.Incidents(ctx, IncidentFilter{Status: f.Status, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	if scope == "" {
		return all, nil
	}
	return slices.DeleteFunc(all, func(i *Incident) bool { return !s.area.Within(i.Jurisdiction, scope) }), nil
}

// Assignments returns the assignments of an incident by may see.
func (s *Service) Assignments(ctx context.Context, by Principal, incident string) ([]*Assignment, error) {
	if _, err := s.Incident(ctx, by, incident); err != nil {
		return nil, err
	}
	return s.store.Assignments(ctx, incident)
}

// ActiveAssignments returns every assignment still holding its unit that
// by may see: its unit or its incident lies in by's jurisdiction.
func (s *Service) ActiveAssignments(ctx context.Context, by Principal) ([]*Assignment, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	all, err := s.store.ActiveAssignments(ctx)
	if err != nil || (by.Role == RoleAdmin && by.Jurisdiction == "") {
		return all, err
	}
	out := all[:0]
	for _, a := range all {
		if st, err := s.unit(a.Unit); err == nil && by.Sees(s.area, st.Jurisdiction) {
			out = append(out, a)
			continue
		}
		if inc, err := s.store.Incident(ctx, a.Incident); err == nil && by.Sees(s.area, inc.Jurisdiction) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Transitions returns the unit status changes recorded for an incident by may see.
func (s *Service) Transitions(ctx context.Context, by Principal, incident string) ([]Transition, error) {
	if _, err := s.Incident(ctx, by, incident); err != nil {
		return nil, err
	}
	return s.store.Transitions(ctx, incident)
}

// Recommend ranks the units for an incident by may see, as things stand now.
func (s *Service) Recommend(ctx context.Context, by Principal, id string) (Recommendations, error) {
	inc, err := s.Incident(ctx, by, id)
	if err != nil {
		return Recommendations{}, err
	}
	return s.rank(inc), nil
}

// Assign commits a unit to an incident on behalf of by. It is a
// compare-and-set: only an available unit can be assigned, so two
// dispatchers can never send one unit twice; the loser gets a conflict.
// The terminal gets the assign command on its cmd topic.
//
// A person decides who goes: an integrator may not assign. Both the
// incident and the unit must lie in by's jurisdiction; a county dispatcher
// cannot send another county's unit (that needs the owning county's
// consent). Every assignment is audited under by's name.
func (s *Service) Assign(ctx context.Context, by Principal, incidentID, unitID string) (*Assignment, error) {
	if err := s.allowed(by); err != nil {
		return nil, err
	}
	if by.Role == RoleIntegrator {
		s.denied(ctx, by, incidentID, unitID, "integrator")
		return nil, Errorf(CodeForbidden, "an integrator may not assign units: a dispatcher decides who goes")
	}
	s.assignMu.Lock()
	a, inc, again, err := s.assign(ctx, by, incidentID, unitID)
	s.assignMu.Unlock()
	if err != nil {
		if errors.Is(err, errForbidden) {
			s.denied(ctx, by, incidentID, unitID, ErrorMessage(err))
		}
		return nil, err
	}
	s.audit.append(ctx, by.Name, AuditAssign, inc.ID, map[string]any{"assignment": a.ID, "unit": unitID, "role": by.Role, "reassign": again})
	s.events.Publish(Event{Type: EventAssignment, Assignment: a, Jurisdiction: inc.Jurisdiction})
	s.events.Publish(Event{Type: EventIncident, Incident: inc, Jurisdiction: inc.Jurisdiction})
	s.sendAssign(ctx, a, inc)
	return a, nil
}

var errForbidden = &Error{Code: CodeForbidden}

func (s *Service) denied(ctx context.Context, by Principal, incident, unit, why string) {
	s.audit.append(ctx, by.Name, AuditACLDenied, incident, map[string]string{"action": "assign", "unit": unit, "why": why})
}

// assign does the checks and the compare-and-set; again reports whether
// the incident had an assignment before (a reassignment).
func (s *Service) assign(ctx context.Context, by Principal, incidentID, unitID string) (a *Assignment, inc *Incident, again bool, err error) {
	if inc, err = s.Incident(ctx, by, incidentID); err != nil {
		return nil, nil, false, err
	}
	st, err := s.unit(unitID)
	if err != nil {
		return nil, nil, false, err
	}
	if !by.Sees(s.area, st.Jurisdiction) {
		return nil, nil, false, Errorf(CodeForbidden, "unit %s belongs to jurisdiction %s: sending another county's unit needs the owning county's consent", unitID, st.Jurisdiction)
	}
	if inc.Status == IncidentClosed || inc.Status == IncidentCancelled {
		return nil, nil, false, Errorf(CodeConflict, "incident %s is %s", inc.ID, inc.Status)
	}
	if st.Status != Available {
		why := string(st.Status)
		if st.Incident != "" {
			why += " on " + st.Incident
		}
		return nil, nil, false, Errorf(CodeConflict, "unit %s is no longer available (%s)", unitID, why)
	}
	before, err := s.store.Assignments(ctx, inc.ID)
	if err != nil {
		return nil, nil, false, fmt.Errorf("assign unit %s: %w", unitID, err)
	}
	now := s.now().UTC()
	a = &Assignment{ID: newID("ASG", now), Incident: inc.ID, Unit: unitID, Status: AssignOffered, By: by.Name, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateAssignment(ctx, a); err != nil {
		return nil, nil, false, fmt.Errorf("assign unit %s: %w", unitID, err)
	}
	inc.Status, inc.UpdatedAt = IncidentAssigned, now
	if err := s.store.UpdateIncident(ctx, inc); err != nil {
		return nil, nil, false, fmt.Errorf("assign unit %s: %w", unitID, err)
	}
	s.setStatus(ctx, unitID, Dispatched, inc.ID, a.ID, "dispatcher:"+by.Name, now)
	return a, inc, len(before) > 0, nil
}

// setStatus moves a unit to status to and records the transition.
func (s *Service) setStatus(ctx context.Context, unitID string, to UnitStatus, incident, assignment, source string, at time.Time) {
	var from UnitStatus
	logged := incident // a unit clearing an incident records the change against it
	s.update(unitID, func(st *UnitState) bool {
		from = st.Status
		if logged == "" {
			logged = st.Incident
		}
		st.Status, st.Incident, st.Assignment = to, incident, assignment
		return true
	})
	t := Transition{Unit: unitID, Incident: logged, From: from, To: to, At: at, Source: source}
	if err := s.store.AppendTransition(ctx, t); err != nil {
		s.log.Error("record transition", "unit", unitID, "to", to, "err", err)
	}
}

// commandIncident is the incident as a terminal sees it in an assign command.
type commandIncident struct {
	ID       string   `json:"id"`
	Location LatLon   `json:"location"`
	Address  string   `json:"address"`
	Priority Priority `json:"priority"`
	Category Category `json:"category"`
}

// commandDestination is the advised destination hospital.
type commandDestination struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Location LatLon   `json:"location"`
	Centres  []Centre `json:"centres"`
}

func (s *Service) sendAssign(ctx context.Context, a *Assignment, inc *Incident) {
	ci, _ := json.Marshal(commandIncident{ID: inc.ID, Location: inc.Location, Address: inc.Address, Priority: inc.Priority, Category: inc.Category})
	cmd := telemetry.Command{Type: telemetry.CommandAssign, Assignment: a.ID, Incident: ci}
	if h, ok := s.Destination(inc); ok {
		cmd.Destination, _ = json.Marshal(commandDestination{ID: h.ID, Name: h.Name, Location: LatLon{Lat: h.Location.Lat(), Lon: h.Location.Lon()}, Centres: h.Centres})
	}
	if s.cmds == nil {
		s.log.Warn("no broker: assign command not sent", "unit", a.Unit, "assignment", a.ID)
		return
	}
	if err := s.cmds.Send(ctx, a.Unit, cmd); err != nil {
		s.log.Error("send assign command", "unit", a.Unit, "assignment", a.ID, "err", err)
	}
}

// Destination advises the hospital for an incident: the nearest holding the
// centre its category needs, else the nearest hospital.
func (s *Service) Destination(inc *Incident) (Hospital, bool) {
	loc := orbPoint(inc.Location)
	centre, needs := inc.Category.Centre()
	var best Hospital
	bestD, found := 0.0, false
	for _, h := range s.area.Hospitals {
		if needs && !h.Has(centre) {
			continue
		}
		if d := geo.Distance(loc, h.Location); !found || d < bestD {
			best, bestD, found = h, d, true
		}
	}
	if !found && needs {
		return s.Destination(&Incident{Location: inc.Location, Category: CatOther})
	}
	return best, found
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
