package dispatch

import (
	"context"
	"sync"
)

// Board is what the engine keeps in memory of the calls in play (open or
// assigned), so that serving them (a recommendation, a read of the call)
// reads no record. It is filled from the record at start and kept by the
// engine from what it stores: a call it takes, and every decision once
// stored. A call that ended leaves it; reads of ended calls go to the
// record.
//
// Like the Picture, a board is this server's: another server deciding on
// the same record is not seen here until this one decides on the call
// itself (its compare-and-set then fails and the engine reads the
// record). A board shared between servers can replace LocalBoard.
type Board interface {
	// Incident returns the call id when the board holds it. The incident
	// is the board's: read it, never change it.
	Incident(id string) (*Incident, bool)
	// Show takes a stored state of a call: kept while the call is in
	// play, dropped once it ended; a version older than the one held
	// changes nothing.
	Show(inc *Incident)
	// Forget drops the call id, so that the next read goes to the record.
	Forget(id string)
}

// LocalBoard is a Board in this process's memory.
type LocalBoard struct {
	mu    sync.RWMutex
	calls map[string]*Incident
}

var _ Board = (*LocalBoard)(nil)

// NewLocalBoard returns an empty board.
func NewLocalBoard() *LocalBoard { return &LocalBoard{calls: map[string]*Incident{}} }

// Incident implements Board.
func (b *LocalBoard) Incident(id string) (*Incident, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	inc, ok := b.calls[id]
	return inc, ok
}

// Show implements Board. It keeps a copy of inc.
func (b *LocalBoard) Show(inc *Incident) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if held, ok := b.calls[inc.ID]; ok && held.Version > inc.Version {
		return
	}
	if !inPlay(inc.Status) {
		delete(b.calls, inc.ID)
		return
	}
	c := *inc
	b.calls[inc.ID] = &c
}

// Forget implements Board.
func (b *LocalBoard) Forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.calls, id)
}

// inPlay reports whether a call of status st is still being worked.
func inPlay(st IncidentStatus) bool { return st == IncidentOpen || st == IncidentAssigned }

// restoreBoard puts the calls in play in the record on the board.
func (s *Service) restoreBoard(ctx context.Context) error {
	for _, st := range []IncidentStatus{IncidentOpen, IncidentAssigned} {
		list, err := s.store.Incidents(ctx, IncidentFilter{Status: st})
		if err != nil {
			return err
		}
		for _, inc := range list {
			s.board.Show(inc)
		}
	}
	return nil
}

// incident returns call id: from the board while it is in play, else
// from the record.
func (s *Service) incident(ctx context.Context, id string) (*Incident, error) {
	if inc, ok := s.board.Incident(id); ok {
		c := *inc // the caller's to keep
		return &c, nil
	}
	return s.store.Incident(ctx, id)
}
