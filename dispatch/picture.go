package dispatch

import "time"

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
