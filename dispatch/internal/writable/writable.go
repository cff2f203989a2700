package writable

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is how often Check probes while the latch is set.
const DefaultEvery = 5 * time.Second

// Latch remembers that writes fail. The zero value is clear and probes
// every DefaultEvery. It is safe for concurrent use.
type Latch struct {
	Every time.Duration // between probes; DefaultEvery when zero

	set    atomic.Bool
	mu     sync.Mutex
	err    error     // why writes fail, while set
	probed time.Time // the last probe
}

// Fail sets the latch: a write failed with err, for want of room or of a
// working disk.
func (l *Latch) Fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.set.Load() {
		l.probed = time.Time{} // the next Check probes at once
	}
	l.err = err
	l.set.Store(true)
}

// Check returns nil while the latch is clear. While it is set it returns
// why writes fail, after running probe if the last probe was Every ago or
// more; a probe that succeeds clears the latch.
func (l *Latch) Check(ctx context.Context, probe func(context.Context) error) error {
	if !l.set.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.set.Load() {
		return nil
	}
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	if now := time.Now(); now.Sub(l.probed) >= every {
		l.probed = now
		err := probe(ctx)
		if err == nil {
			l.err = nil
			l.set.Store(false)
			return nil
		}
		l.err = err
	}
	return fmt.Errorf("writes fail: %w", l.err)
}
