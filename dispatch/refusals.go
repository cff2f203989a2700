package dispatch

import (
	"context"
	"fmt"
	"maps"
	"sync"
)

// refusals remembers, for each call still in play, the units that
// declined or abandoned it and why, so that ranking a call leaves them
// out without reading the record. It is rebuilt from the record when the
// service starts and kept up to date with every decision the service
// stores (Service.show). A call's entry goes when the call is closed or
// cancelled.
//
// It knows this process's decisions: with several servers on one record,
// a refusal decided by another server is seen here only after a restart
// (the shared live picture is the place for it when that comes).
type refusals struct {
	mu sync.RWMutex
	// by incident, then by unit: the reason to show. An inner map is
	// replaced, never changed, so that a reader may keep it.
	by map[string]map[string]string
}

func newRefusals() *refusals { return &refusals{by: map[string]map[string]string{}} }

// of returns the units that refused incident, with the reason; the map
// must not be changed.
func (r *refusals) of(incident string) map[string]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.by[incident]
}

// note records what a stored change says about refusals: a declined or
// aborted assignment adds its unit to its call's refusals, and a call
// that ends forgets them.
func (r *refusals) note(c Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range c.Assignments {
		if a.Status != AssignDeclined && a.Status != AssignAborted {
			continue
		}
		m := maps.Clone(r.by[a.Incident])
		if m == nil {
			m = map[string]string{}
		}
		m[a.Unit] = fmt.Sprintf("%s this call at %s", a.Status, a.UpdatedAt.UTC().Format("15:04:05"))
		r.by[a.Incident] = m
	}
	if inc := c.Incident; inc != nil && (inc.Status == IncidentClosed || inc.Status == IncidentCancelled) {
		delete(r.by, inc.ID)
	}
}

// load rebuilds the refusals of the calls in play from the record.
func (r *refusals) load(ctx context.Context, store Store) error {
	for _, status := range []IncidentStatus{IncidentOpen, IncidentAssigned} {
		incs, err := store.Incidents(ctx, IncidentFilter{Status: status})
		if err != nil {
			return fmt.Errorf("%s incidents: %w", status, err)
		}
		for _, inc := range incs {
			as, err := store.Assignments(ctx, inc.ID)
			if err != nil {
				return fmt.Errorf("assignments of %s: %w", inc.ID, err)
			}
			r.note(Change{Assignments: as})
		}
	}
	return nil
}
