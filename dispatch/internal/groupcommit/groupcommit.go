package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// ErrClosed is what Append returns once the store is closing.
var ErrClosed = dispatch.Errorf(dispatch.CodeUnavailable, "position history is closed")

// Committer is a group commit: concurrent AppendFixes calls hand their
// fixes to writer goroutines, and each writer commits everything that is
// waiting in one transaction, so that one fsync acknowledges many calls.
// A writer never lingers: it takes what is queued (up to maxRows) the
// moment it is free, so a call waits at most for the commit in progress
// before its own, and under load batches grow by themselves. Each call
// returns only once its own rows are committed (or failed).
type Committer struct {
	flush   func(ctx context.Context, fixes []telemetry.Fix) error
	maxRows int           // rows a writer gathers before it commits
	timeout time.Duration // bound on one commit
	logger  *slog.Logger

	reqs chan *fixReq // unbuffered: a request is either taken by a writer or refused
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	commits, rows atomic.Int64 // for benchmarks and logs
}

type fixReq struct {
	fixes []telemetry.Fix
	done  chan error // buffered: a writer never blocks on a caller that gave up
}

// New starts writers goroutines that commit with flush; Stop ends them.
func New(writers, maxRows int, timeout time.Duration, logger *slog.Logger, flush func(context.Context, []telemetry.Fix) error) *Committer {
	c := &Committer{
		flush: flush, maxRows: maxRows, timeout: timeout, logger: logger,
		reqs: make(chan *fixReq), quit: make(chan struct{}),
	}
	for range writers {
		c.wg.Go(c.run)
	}
	return c
}

// Append hands fixes to a writer and waits for their commit.
func (c *Committer) Append(ctx context.Context, fixes []telemetry.Fix) error {
	if len(fixes) == 0 {
		return nil
	}
	// A copy: a caller that gives up may reuse its slice while a writer reads ours.
	r := &fixReq{fixes: slices.Clone(fixes), done: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-c.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		// The rows may still commit; storing them again is harmless.
		return fmt.Errorf("waiting for commit: %w", ctx.Err())
	}
}

// run is one writer: it exits when stop is called, after committing the
// batch in hand.
func (c *Committer) run() {
	for {
		var batch []*fixReq
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
		case <-c.quit:
			return
		}
		rows := len(batch[0].fixes)
	gather:
		for rows < c.maxRows {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
				rows += len(r.fixes)
			default:
				break gather // idle: nothing more is waiting
			}
		}
		c.commit(batch, rows)
	}
}

// commit writes a batch in one transaction. When that fails and the batch
// holds several calls, each is retried alone, so that one bad call does
// not fail the others.
func (c *Committer) commit(batch []*fixReq, rows int) {
	fixes := batch[0].fixes
	if len(batch) > 1 {
		fixes = make([]telemetry.Fix, 0, rows)
		for _, r := range batch {
			fixes = append(fixes, r.fixes...)
		}
	}
	err := c.flushOne(fixes)
	if err != nil && len(batch) > 1 {
		c.logger.Warn("group commit failed, committing each call alone", "calls", len(batch), "rows", rows, "err", err)
		for _, r := range batch {
			r.done <- c.flushOne(r.fixes)
		}
		return
	}
	for _, r := range batch {
		r.done <- err
	}
}

func (c *Committer) flushOne(fixes []telemetry.Fix) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.flush(ctx, fixes); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return dispatch.Errorf(dispatch.CodeUnavailable, "storing %d fixes took longer than %s", len(fixes), c.timeout)
		}
		return fmt.Errorf("store %d fixes: %w", len(fixes), err)
	}
	c.commits.Add(1)
	c.rows.Add(int64(len(fixes)))
	return nil
}

// Stop refuses new calls, lets the writers finish the batches in hand and
// waits for them to exit.
func (c *Committer) Stop() {
	c.once.Do(func() { close(c.quit) })
	c.wg.Wait()
}

// Stats returns how many transactions have committed and how many rows
// they held, for benchmarks and logs.
func (c *Committer) Stats() (commits, rows int64) { return c.commits.Load(), c.rows.Load() }
