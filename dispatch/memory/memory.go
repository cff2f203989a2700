package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// Store is an in-memory dispatch.Store.
type Store struct {
	mu          sync.Mutex
	incidents   map[string]*dispatch.Incident
	byExternal  map[[2]string]string
	assignments map[string]*dispatch.Assignment
	byIncident  map[string][]string
	transitions []dispatch.Transition
	units       map[string]dispatch.UnitRecord
	outbox      outbox
	hospitals   map[string]dispatch.HospitalState
	consents    consents
}

var _ dispatch.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{
		incidents:   map[string]*dispatch.Incident{},
		byExternal:  map[[2]string]string{},
		assignments: map[string]*dispatch.Assignment{},
		byIncident:  map[string][]string{},
		units:       map[string]dispatch.UnitRecord{},
		outbox:      outbox{byID: map[string]int{}},
		hospitals:   map[string]dispatch.HospitalState{},
	}
}

func clone[T any](v *T) *T { c := *v; return &c }

// CreateIncident implements dispatch.Store.
func (s *Store) CreateIncident(ctx context.Context, inc *dispatch.Incident) (*dispatch.Incident, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{inc.Source, inc.ExternalID}
	if id, ok := s.byExternal[key]; ok && inc.ExternalID != "" {
		return clone(s.incidents[id]), false, nil
	}
	if _, ok := s.incidents[inc.ID]; ok {
		return nil, false, dispatch.Errorf(dispatch.CodeConflict, "incident %s exists", inc.ID)
	}
	if inc.ExternalID != "" {
		s.byExternal[key] = inc.ID
	}
	s.incidents[inc.ID] = clone(inc)
	return clone(inc), true, nil
}

// Incident implements dispatch.Store.
func (s *Store) Incident(ctx context.Context, id string) (*dispatch.Incident, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc, ok := s.incidents[id]
	if !ok {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "incident %q not found", id)
	}
	return clone(inc), nil
}

// Incidents implements dispatch.Store: newest first.
func (s *Store) Incidents(ctx context.Context, f dispatch.IncidentFilter) ([]*dispatch.Incident, error) {
	s.mu.Lock()
	var out []*dispatch.Incident
	for _, inc := range s.incidents {
		if f.Status == "" || inc.Status == f.Status {
			out = append(out, clone(inc))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *dispatch.Incident) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Assignment implements dispatch.Store.
func (s *Store) Assignment(ctx context.Context, id string) (*dispatch.Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.assignments[id]
	if !ok {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "assignment %q not found", id)
	}
	return clone(a), nil
}

// Assignments implements dispatch.Store.
func (s *Store) Assignments(ctx context.Context, incident string) ([]*dispatch.Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*dispatch.Assignment
	for _, id := range s.byIncident[incident] {
		out = append(out, clone(s.assignments[id]))
	}
	return out, nil
}

// ActiveAssignments implements dispatch.Store.
func (s *Store) ActiveAssignments(ctx context.Context) ([]*dispatch.Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*dispatch.Assignment
	for _, a := range s.assignments {
		if a.Status.Active() {
			out = append(out, clone(a))
		}
	}
	slices.SortFunc(out, func(a, b *dispatch.Assignment) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Transitions implements dispatch.Store.
func (s *Store) Transitions(ctx context.Context, incident string) ([]dispatch.Transition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dispatch.Transition
	for _, t := range s.transitions {
		if t.Incident == incident {
			out = append(out, t)
		}
	}
	return out, nil
}

// UnitRecords implements dispatch.Store.
func (s *Store) UnitRecords(ctx context.Context) ([]dispatch.UnitRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]dispatch.UnitRecord, 0, len(s.units))
	for _, r := range s.units {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b dispatch.UnitRecord) int { return cmp.Compare(a.Unit, b.Unit) })
	return out, nil
}

// UnitRecord implements dispatch.Store.
func (s *Store) UnitRecord(ctx context.Context, unit string) (dispatch.UnitRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.units[unit]
	if !ok {
		return dispatch.UnitRecord{}, dispatch.Errorf(dispatch.CodeNotFound, "unit %q has no record", unit)
	}
	return r, nil
}

// Apply implements dispatch.Store: every check first, then every write,
// under one lock, so that a refused change leaves nothing behind.
func (s *Store) Apply(ctx context.Context, c dispatch.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(c); err != nil {
		return err
	}
	if err := s.checkConsents(c.Consents); err != nil {
		return err
	}
	if inc := c.Incident; inc != nil {
		if cur := s.incidents[inc.ID]; cur.ExternalID != "" {
			delete(s.byExternal, [2]string{cur.Source, cur.ExternalID})
		}
		if inc.ExternalID != "" {
			s.byExternal[[2]string{inc.Source, inc.ExternalID}] = inc.ID
		}
		s.incidents[inc.ID] = clone(inc)
	}
	for _, a := range c.Assignments {
		if _, ok := s.assignments[a.ID]; !ok {
			s.byIncident[a.Incident] = append(s.byIncident[a.Incident], a.ID)
		}
		s.assignments[a.ID] = clone(a)
	}
	for _, r := range c.Units {
		r.At, r.PressAt = r.At.UTC(), r.PressAt.UTC()
		s.units[r.Unit] = r
	}
	s.transitions = append(s.transitions, c.Transitions...)
	s.outbox.insert(c.Commands)
	s.applyConsents(c.Consents)
	return nil
}

// check refuses c for a missing row, a stale version or a unit that would
// hold two active assignments (the durable stores enforce the last with a
// partial unique index). The caller holds s.mu.
func (s *Store) check(c dispatch.Change) error {
	if inc := c.Incident; inc != nil {
		cur, ok := s.incidents[inc.ID]
		if !ok {
			return dispatch.Errorf(dispatch.CodeNotFound, "incident %q not found", inc.ID)
		}
		if cur.Version != inc.Version-1 {
			return conflict("incident", inc.ID, cur.Version, inc.Version)
		}
		if id, ok := s.byExternal[[2]string{inc.Source, inc.ExternalID}]; ok && inc.ExternalID != "" && id != inc.ID {
			return dispatch.Errorf(dispatch.CodeConflict, "incident %s: source and external id taken", inc.ID)
		}
	}
	err := checkRows(s, "assignment", "already holds an active assignment", s.assignments, c.Assignments, func(a *dispatch.Assignment) row {
		return row{a.ID, a.Incident, a.Unit, a.Version, a.Status.Active()}
	})
	if err != nil {
		return err
	}
	for _, r := range c.Units {
		cur, ok := s.units[r.Unit]
		switch {
		case !ok && r.Version != 1:
			return conflict("unit", r.Unit, 0, r.Version)
		case ok && cur.Version != r.Version-1:
			return conflict("unit", r.Unit, cur.Version, r.Version)
		}
	}
	return s.outbox.check(c.Commands)
}

// row is what checkRows needs of a versioned row of a call that may hold
// a unit (an active assignment, a pending consent request).
type row struct {
	id, incident, unit string
	version            int64
	holds              bool
}

// checkRows refuses the changed rows of kind for a missing row or call, a
// stale version, or a unit that two rows would hold once they are
// written (what the durable stores' partial unique indexes refuse). The
// caller holds s.mu.
func checkRows[T any](s *Store, kind, held string, stored map[string]*T, changed []*T, of func(*T) row) error {
	holder := map[string]string{} // unit -> the row holding it, as it will be
	for _, v := range stored {
		if r := of(v); r.holds {
			holder[r.unit] = r.id
		}
	}
	for _, v := range changed {
		r := of(v)
		cur, ok := stored[r.id]
		var was row
		if ok {
			was = of(cur)
		}
		switch {
		case r.version == 1 && ok:
			return dispatch.Errorf(dispatch.CodeConflict, "%s %s exists", kind, r.id)
		case r.version != 1 && !ok:
			return dispatch.Errorf(dispatch.CodeNotFound, "%s %q not found", kind, r.id)
		case ok && was.version != r.version-1:
			return conflict(kind, r.id, was.version, r.version)
		}
		if _, ok := s.incidents[r.incident]; !ok {
			return dispatch.Errorf(dispatch.CodeNotFound, "incident %q not found", r.incident)
		}
		if ok && holder[was.unit] == r.id {
			delete(holder, was.unit)
		}
	}
	for _, v := range changed {
		r := of(v)
		if !r.holds {
			continue
		}
		if other, ok := holder[r.unit]; ok && other != r.id {
			return dispatch.Errorf(dispatch.CodeConflict, "unit %s %s (%s)", r.unit, held, other)
		}
		holder[r.unit] = r.id
	}
	return nil
}

// conflict is the error of a row changed since the change read it.
func conflict(kind, id string, stored, want int64) error {
	return dispatch.Errorf(dispatch.CodeConflict, "%s %s changed meanwhile (version %d stored, change made from version %d)", kind, id, stored, want-1)
}
