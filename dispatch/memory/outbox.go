package memory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// outbox is the commands to terminals, in the order written.
type outbox struct {
	cmds []dispatch.OutboxCommand
	byID map[string]int // index in cmds
}

// check refuses new commands whose id is taken. The caller holds the store's lock.
func (o *outbox) check(cmds []dispatch.OutboxCommand) error {
	seen := map[string]bool{}
	for _, c := range cmds {
		if _, ok := o.byID[c.ID]; ok || seen[c.ID] {
			return dispatch.Errorf(dispatch.CodeConflict, "command %s exists", c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}

// insert appends cmds, numbered in order. The caller holds the store's lock.
func (o *outbox) insert(cmds []dispatch.OutboxCommand) {
	for _, c := range cmds {
		c.Seq = int64(len(o.cmds) + 1)
		c.CreatedAt, c.ExpiresAt = micro(c.CreatedAt), micro(c.ExpiresAt)
		c.SentAt, c.SettledAt = micro(c.SentAt), micro(c.SettledAt)
		o.byID[c.ID] = len(o.cmds)
		o.cmds = append(o.cmds, c)
	}
}

// micro is t as the durable stores keep it: UTC, microseconds.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// PendingCommands implements dispatch.Outbox.
func (s *Store) PendingCommands(ctx context.Context, unit string) ([]dispatch.OutboxCommand, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dispatch.OutboxCommand
	for _, c := range s.outbox.cmds {
		if c.State == dispatch.CommandPending && (unit == "" || c.Unit == unit) {
			out = append(out, c)
		}
	}
	return out, nil
}

// UpdateCommand implements dispatch.Outbox.
func (s *Store) UpdateCommand(ctx context.Context, c dispatch.OutboxCommand) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.outbox.byID[c.ID]
	if !ok {
		return dispatch.Errorf(dispatch.CodeNotFound, "command %q not found", c.ID)
	}
	cur := &s.outbox.cmds[i]
	if cur.State != dispatch.CommandPending {
		return dispatch.Errorf(dispatch.CodeConflict, "command %s is %s already", c.ID, cur.State)
	}
	cur.State, cur.Attempts, cur.SentAt, cur.SettledAt = c.State, c.Attempts, micro(c.SentAt), micro(c.SettledAt)
	return nil
}

// HospitalStates implements dispatch.HospitalStates.
func (s *Store) HospitalStates(ctx context.Context) ([]dispatch.HospitalState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]dispatch.HospitalState, 0, len(s.hospitals))
	for _, h := range s.hospitals {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b dispatch.HospitalState) int { return cmp.Compare(a.Hospital, b.Hospital) })
	return out, nil
}

// SetHospitalState implements dispatch.HospitalStates.
func (s *Store) SetHospitalState(ctx context.Context, st dispatch.HospitalState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Until, st.UpdatedAt = micro(st.Until), micro(st.UpdatedAt)
	s.hospitals[st.Hospital] = st
	return nil
}
