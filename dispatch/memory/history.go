package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// Tracks is an in-memory telemetry.History that keeps the last Keep fixes
// per unit (and the last video status).
type Tracks struct {
	Keep int

	mu    sync.Mutex
	units map[string][]telemetry.Fix
	seen  map[string]map[fixKey]bool
	video map[string]telemetry.Video
}

// fixKey identifies a fix of a unit: seq alone is not enough, because a
// terminal that reboots starts its seq again (the durable stores use the
// same key).
type fixKey struct {
	seq  uint64
	time time.Time
}

var (
	_ telemetry.History = (*Tracks)(nil)
	_ dispatch.Tracks   = (*Tracks)(nil)
)

// NewTracks keeps up to keep fixes per unit (e.g. 10 hours at 5 s).
func NewTracks(keep int) *Tracks {
	return &Tracks{Keep: keep, units: map[string][]telemetry.Fix{}, seen: map[string]map[fixKey]bool{}, video: map[string]telemetry.Video{}}
}

// AppendFixes implements telemetry.History.
func (t *Tracks) AppendFixes(ctx context.Context, fixes []telemetry.Fix) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range fixes {
		// Times as the durable stores keep them: UTC, microseconds.
		f.Time, f.Received = f.Time.UTC().Truncate(time.Microsecond), f.Received.UTC().Truncate(time.Microsecond)
		seen := t.seen[f.Unit]
		if seen == nil {
			seen = map[fixKey]bool{}
			t.seen[f.Unit] = seen
		}
		if seen[fixKey{f.Seq, f.Time}] {
			continue
		}
		seen[fixKey{f.Seq, f.Time}] = true
		tr := t.units[f.Unit]
		i, _ := slices.BinarySearchFunc(tr, f, func(x, y telemetry.Fix) int {
			return cmp.Or(x.Time.Compare(y.Time), cmp.Compare(x.Seq, y.Seq))
		})
		tr = slices.Insert(tr, i, f)
		if len(tr) > t.Keep {
			for _, old := range tr[:len(tr)-t.Keep] {
				delete(seen, fixKey{old.Seq, old.Time})
			}
			tr = slices.Clone(tr[len(tr)-t.Keep:])
		}
		t.units[f.Unit] = tr
	}
	return nil
}

// Track implements telemetry.History. The page is copied out under the
// lock and handed to fn after it, so that a slow reader never holds up
// the writers.
func (t *Tracks) Track(ctx context.Context, q telemetry.TrackQuery, fn func(telemetry.Fix) error) (bool, error) {
	if q.Limit <= 0 {
		return false, fmt.Errorf("track of %s: limit %d: want a positive page size", q.Unit, q.Limit)
	}
	page, more := t.page(q)
	for _, f := range page {
		if err := fn(f); err != nil {
			return false, err
		}
	}
	return more, nil
}

func (t *Tracks) page(q telemetry.TrackQuery) ([]telemetry.Fix, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.units[q.Unit]
	// The first fix at or after from, and after the cursor.
	i, _ := slices.BinarySearchFunc(tr, q.From, func(f telemetry.Fix, from time.Time) int {
		if f.Time.Before(from) {
			return -1
		}
		return 1
	})
	if !q.After.IsZero() {
		j, _ := slices.BinarySearchFunc(tr, q.After, func(f telemetry.Fix, c telemetry.TrackCursor) int {
			if cmp.Or(f.Time.Compare(c.Time), cmp.Compare(f.Seq, c.Seq)) <= 0 {
				return -1
			}
			return 1
		})
		i = max(i, j)
	}
	// The first fix after to.
	end, _ := slices.BinarySearchFunc(tr, q.To, func(f telemetry.Fix, to time.Time) int {
		if f.Time.After(to) {
			return 1
		}
		return -1
	})
	if end-i > q.Limit {
		return slices.Clone(tr[i : i+q.Limit]), true
	}
	if i >= end {
		return nil, false
	}
	return slices.Clone(tr[i:end]), false
}

// AppendVideo implements telemetry.History; only the last report is kept.
func (t *Tracks) AppendVideo(ctx context.Context, v telemetry.Video) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.video[v.Unit] = v
	return nil
}

// Latest implements telemetry.History.
func (t *Tracks) Latest(ctx context.Context) ([]telemetry.Fix, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []telemetry.Fix
	for _, tr := range t.units {
		if len(tr) > 0 {
			out = append(out, tr[len(tr)-1])
		}
	}
	slices.SortFunc(out, func(a, b telemetry.Fix) int { return cmp.Compare(a.Unit, b.Unit) })
	return out, nil
}
