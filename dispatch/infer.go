package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// SourceInferred is the source of a transition the engine made from
// telemetry (InferApply).
const SourceInferred = "inferred"

// InferPolicy is what the engine does with a status telemetry shows.
type InferPolicy string

// Inference policies.
const (
	// InferOffer alerts the dispatchers with the status telemetry
	// suggests (an inferred alert); a dispatcher confirms it
	// (SetStatus). The default.
	InferOffer InferPolicy = "offer"
	// InferApply sets the status itself, with source inferred, and
	// tells the dispatchers so.
	InferApply InferPolicy = "apply"
	// InferOff looks at nothing.
	InferOff InferPolicy = "off"
)

// InferConfig says when telemetry shows a status. A unit dispatched or
// en route that stays within SceneRadius of its call's scene, slower
// than StillKmh, for Dwell is on scene; a unit transporting that stays so
// within HospitalRadius of a hospital is at the hospital. Zero fields
// take the defaults: offer, 100 m, 150 m, 5 km/h, 30 s.
type InferConfig struct {
	Policy         InferPolicy
	SceneRadius    float64 // metres
	HospitalRadius float64 // metres around the hospital's point (its geofence)
	StillKmh       float64
	Dwell          time.Duration
}

// inferrer watches the units whose status telemetry can tell.
type inferrer struct {
	cfg InferConfig

	mu    sync.Mutex
	units map[string]*watch
}

// watch is what the inferrer knows of one unit in one status on one call.
type watch struct {
	incident string
	status   UnitStatus
	scene    orb.Point // the call's location, for on scene
	place    string    // the hospital it stands at, for at hospital
	since    time.Time // fix time of the first still fix in a row; zero while moving
	last     time.Time // the newest fix looked at
	done     bool      // suggested or applied already
}

// is reports whether w watches st's unit in its status on its call.
func (w *watch) is(st UnitState) bool {
	return w != nil && w.incident == st.Incident && w.status == st.Status
}

// suggestion is a status telemetry shows.
type suggestion struct {
	to    UnitStatus
	place string // the hospital, for at_hospital
	still time.Duration
}

func newInferrer(c InferConfig) (*inferrer, error) {
	switch c.Policy {
	case "":
		c.Policy = InferOffer
	case InferOffer, InferApply, InferOff:
	default:
		return nil, fmt.Errorf("dispatch: inference policy %q: want offer, apply or off", c.Policy)
	}
	if c.SceneRadius <= 0 {
		c.SceneRadius = 100
	}
	if c.HospitalRadius <= 0 {
		c.HospitalRadius = 150
	}
	if c.StillKmh <= 0 {
		c.StillKmh = 5
	}
	if c.Dwell <= 0 {
		c.Dwell = 30 * time.Second
	}
	return &inferrer{cfg: c, units: map[string]*watch{}}, nil
}

// inferable is the status telemetry can show for a unit in status st:
// on scene while going there, at the hospital while transporting. It
// never closes a call nor goes backwards.
func inferable(st UnitStatus) UnitStatus {
	switch st {
	case Dispatched, EnRoute:
		return OnScene
	case Transporting:
		return AtHospital
	}
	return ""
}

// inferFrom looks at a unit's new fixes (st is its state after them) and,
// when they show the unit stopped at its call's scene or at a hospital,
// offers or applies that status per policy, once per status and call.
func (s *Service) inferFrom(ctx context.Context, st UnitState, fixes []telemetry.Fix) {
	in := s.infer
	if in.cfg.Policy == InferOff {
		return
	}
	want := inferable(st.Status)
	if want == "" || st.Incident == "" {
		in.mu.Lock()
		delete(in.units, st.ID)
		in.mu.Unlock()
		return
	}
	in.mu.Lock()
	w := in.units[st.ID]
	fresh := !w.is(st)
	in.mu.Unlock()
	var scene orb.Point
	if fresh && want == OnScene {
		inc, err := s.store.Incident(ctx, st.Incident)
		if err != nil {
			s.log.Warn("infer: the call of a unit", "unit", st.ID, "incident", st.Incident, "err", err)
			return
		}
		scene = orbPoint(inc.Location)
	}
	in.mu.Lock()
	if w = in.units[st.ID]; !w.is(st) {
		w = &watch{incident: st.Incident, status: st.Status, scene: scene}
		in.units[st.ID] = w
	}
	sg := in.observe(w, want, fixes, s.area.Hospitals)
	in.mu.Unlock()
	if sg != nil {
		s.suggest(ctx, st, *sg)
	}
}

// observe takes fixes into w and returns a suggestion the first time
// they show the unit still at the place for the dwell time. The caller
// holds in.mu.
func (in *inferrer) observe(w *watch, want UnitStatus, fixes []telemetry.Fix, hospitals []Hospital) *suggestion {
	var out *suggestion
	for _, f := range fixes {
		if !f.Time.After(w.last) {
			continue
		}
		w.last = f.Time
		p := orb.Point{f.Lon, f.Lat}
		place, at := "", false
		switch want {
		case OnScene:
			at = geo.Distance(p, w.scene) <= in.cfg.SceneRadius
		case AtHospital:
			for _, h := range hospitals {
				if geo.Distance(p, h.Location) <= in.cfg.HospitalRadius {
					place, at = h.ID, true
					break
				}
			}
		}
		switch {
		case !at || f.SpeedKmh >= in.cfg.StillKmh:
			w.since = time.Time{}
		case w.since.IsZero() || place != w.place:
			w.since, w.place = f.Time, place
		case f.Time.Sub(w.since) >= in.cfg.Dwell && !w.done:
			w.done = true
			out = &suggestion{to: want, place: place, still: f.Time.Sub(w.since)}
		}
	}
	return out
}

// suggest offers sg to the dispatchers of st's call, or applies it.
func (s *Service) suggest(ctx context.Context, st UnitState, sg suggestion) {
	where := "at the scene of " + st.Incident
	if sg.to == AtHospital {
		where = "at hospital " + sg.place
		if h, ok := s.hospital(sg.place); ok {
			where += " (" + h.Name + ")"
		}
	}
	al := &Alert{Kind: AlertInferred, Incident: st.Incident, Unit: st.ID, Assignment: st.Assignment, Status: sg.to, At: s.now().UTC()}
	if s.infer.cfg.Policy == InferOffer {
		al.Message = fmt.Sprintf("unit %s has stood still %s for %s: confirm %s", st.ID, where, sg.still.Round(time.Second), sg.to)
	} else {
		_, err := s.changeStatus(ctx, statusChange{unit: st.ID, to: sg.to, source: SourceInferred, at: s.now().UTC(), only: []UnitStatus{st.Status}, incident: st.Incident})
		switch {
		case errors.Is(err, errIgnore), errors.Is(err, errRefused):
			return // the unit moved on meanwhile
		case err != nil:
			s.log.Error("infer: apply a status", "unit", st.ID, "status", sg.to, "err", err)
			return
		}
		al.Message = fmt.Sprintf("unit %s set %s from telemetry: it has stood still %s for %s", st.ID, sg.to, where, sg.still.Round(time.Second))
	}
	inc, err := s.store.Incident(ctx, st.Incident)
	if err != nil {
		inc = nil // scoped by the unit's jurisdiction instead
	}
	s.alert(al, inc)
}

// SetStatus sets a unit's status on behalf of by: a dispatcher confirming
// what the crew said on the radio or what telemetry suggests. The
// lifecycle's rules are the crew's (a move they could not press is a
// conflict), and so are its consequences: a unit that clears or stops
// before it has done its part aborts its assignment and the call goes
// back in the queue. The transition's source is dispatcher:<name>, and
// the change is audited. Setting the status a unit has changes nothing.
func (s *Service) SetStatus(ctx context.Context, by Principal, unit string, to UnitStatus) (UnitState, error) {
	if by.Role == RoleIntegrator {
		return UnitState{}, Errorf(CodeForbidden, "an integrator may not set a unit's status: a dispatcher does")
	}
	if _, err := s.Unit(by, unit); err != nil {
		return UnitState{}, err
	}
	if !to.Valid() || to == Dispatched {
		return UnitState{}, Errorf(CodeInvalid, "status %q: want one of en_route, on_scene, transporting, at_hospital, available, out_of_service (dispatched is an assignment)", to)
	}
	from, err := s.changeStatus(ctx, statusChange{unit: unit, to: to, source: sourceDispatcher + by.Name, at: s.now().UTC()})
	switch {
	case errors.Is(err, errRefused):
		return UnitState{}, Errorf(CodeConflict, "unit %s cannot go from %s to %s", unit, from, to)
	case errors.Is(err, errIgnore):
	case err != nil:
		return UnitState{}, err
	default:
		s.audit.append(ctx, by.Name, AuditStatusChange, unit, map[string]any{"from": from, "to": to})
	}
	return s.unit(unit)
}
