package memory

import (
	"cmp"
	"context"
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

// Track implements telemetry.History.
func (t *Tracks) Track(ctx context.Context, unit string, from, to time.Time) ([]telemetry.Fix, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []telemetry.Fix
	for _, f := range t.units[unit] {
		if !f.Time.Before(from) && !f.Time.After(to) {
			out = append(out, f)
		}
	}
	return out, nil
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
