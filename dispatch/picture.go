package dispatch

import (
	"cmp"
	"slices"
	"sync"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Picture is the live picture of the fleet: every registered unit's state
// as telemetry and dispatch decisions last left it, and where each unit
// is. The engine reads it on every recommendation and changes it on every
// fix, press and decision, so it must answer from memory. The in-process
// LocalPicture is the default; a shared one (Redis) lets several servers
// see one fleet.
//
// The picture holds what was decided, not the decision: a unit's status
// changes in the picture only after the record stored it (Store.Apply).
type Picture interface {
	// Unit returns the state of unit id and whether the unit is registered.
	Unit(id string) (UnitState, bool)
	// Units returns, by id, the state of every unit keep accepts (nil
	// accepts all). keep runs under the picture's lock: it must not call
	// back into the picture.
	Units(keep func(*UnitState) bool) []UnitState
	// Update applies fn to the state of unit id atomically with respect to
	// every other reader and writer of that unit; fn reports whether it
	// changed anything. Update returns the state after fn and whether it
	// changed; a unit that is not registered is not changed. fn must not
	// call back into the picture.
	Update(id string, fn func(st *UnitState) bool) (UnitState, bool)
	// Nearby calls fn with the units that have a position within radius
	// metres of center, nearest first (ties by id), until fn returns false.
	// fn gets a copy of the unit's state and may call back into the picture.
	Nearby(center orb.Point, radius float64, fn func(h geo.Hit, st UnitState) bool)
}

// LocalPicture is the Picture of one process: a map of unit states and a
// spatial index of their positions. It is safe for concurrent use.
type LocalPicture struct {
	mu    sync.RWMutex
	units map[string]*UnitState
	index geo.Index
}

var _ Picture = (*LocalPicture)(nil)

// NewLocalPicture returns a picture of units, each available with no
// position, whose positions are kept in index (geo.NewAdaptiveGrid when nil:
// it sizes its cells to the fleet, docs/BENCHMARKS.md).
func NewLocalPicture(units []Unit, index geo.Index) *LocalPicture {
	if index == nil {
		index = geo.NewAdaptiveGrid()
	}
	p := &LocalPicture{units: make(map[string]*UnitState, len(units)), index: index}
	for _, u := range units {
		p.units[u.ID] = &UnitState{Unit: u, Status: Available}
	}
	return p
}

// Unit implements Picture.
func (p *LocalPicture) Unit(id string) (UnitState, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	st, ok := p.units[id]
	if !ok {
		return UnitState{}, false
	}
	return *st, true
}

// Units implements Picture.
func (p *LocalPicture) Units(keep func(*UnitState) bool) []UnitState {
	p.mu.RLock()
	out := make([]UnitState, 0, len(p.units))
	for _, st := range p.units {
		if keep == nil || keep(st) {
			out = append(out, *st)
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b UnitState) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Update implements Picture. A change of position moves the unit in the
// index too.
func (p *LocalPicture) Update(id string, fn func(st *UnitState) bool) (UnitState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.units[id]
	if !ok {
		return UnitState{}, false
	}
	before := st.Position
	if !fn(st) {
		return *st, false
	}
	if st.Position != before && st.Position != nil {
		p.index.Set(id, orb.Point{st.Position.Lon, st.Position.Lat})
	}
	return *st, true
}

// Nearby implements Picture.
func (p *LocalPicture) Nearby(center orb.Point, radius float64, fn func(h geo.Hit, st UnitState) bool) {
	v := nearbyVisits.Get().(*nearbyVisit)
	v.p, v.fn = p, fn
	p.index.Nearby(center, radius, v.visit)
	v.p, v.fn = nil, nil
	nearbyVisits.Put(v)
}

// nearbyVisit hands the index's hits to a Nearby caller with the units'
// states. It is pooled, with its method value bound once, so that a query
// allocates nothing.
type nearbyVisit struct {
	p     *LocalPicture
	fn    func(geo.Hit, UnitState) bool
	visit func(geo.Hit) bool // v.hit
}

var nearbyVisits = sync.Pool{New: func() any {
	v := new(nearbyVisit)
	v.visit = v.hit
	return v
}}

func (v *nearbyVisit) hit(h geo.Hit) bool {
	v.p.mu.RLock()
	st, ok := v.p.units[h.ID]
	var u UnitState
	if ok {
		u = *st
	}
	v.p.mu.RUnlock()
	if !ok {
		return true
	}
	return v.fn(h, u)
}
