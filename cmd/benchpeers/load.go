package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// measure is one measurement of one side: a rate and the latencies of the
// operations that made it.
type measure struct {
	Rate     float64 // operations (or deliveries, or fixes) per second
	P50, P99 time.Duration
	Errors   int
	FirstErr string
	Extra    map[string]float64 // side-specific figures: RSS, drops, ...
}

// latencies turns durations into a measure's percentiles.
func (m *measure) latencies(d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	m.P50 = d[len(d)/2]
	m.P99 = d[min(len(d)-1, len(d)*99/100)]
}

// closedLoop runs workers that each call their op back to back, first for
// warmup, then for d, and measures the operations that ended within the
// window. When fewer than two operations a worker ended within d, the
// window stretches until they have, up to six times d, so that a side
// slower than the window is measured rather than read as zero. newOp
// makes worker i's operation; each worker owns its connection.
func closedLoop(ctx context.Context, workers int, warmup, d time.Duration, newOp func(i int) (op func(context.Context) error, closeFn func(), err error)) (measure, error) {
	ops := make([]func(context.Context) error, workers)
	for i := range workers {
		op, closeFn, err := newOp(i)
		if err != nil {
			return measure{}, err
		}
		if closeFn != nil {
			defer closeFn()
		}
		ops[i] = op
	}
	var (
		from, to atomic.Int64 // the window, in UnixNano; 0 until set
		mu       sync.Mutex
		ended    atomic.Int64 // operations ended within the window
		all      []time.Duration
		errs     int
		firstErr string
	)
	const never = int64(1) << 62
	from.Store(never)
	to.Store(never)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			var mine []time.Duration
			var myErrs int
			var myFirst string
			for runCtx.Err() == nil {
				t0 := time.Now()
				err := ops[i](runCtx)
				t1 := time.Now()
				if n := t1.UnixNano(); n < from.Load() || n > to.Load() {
					if n > to.Load() {
						break
					}
					continue
				}
				if err != nil {
					if runCtx.Err() != nil {
						break
					}
					myErrs++
					if myFirst == "" {
						myFirst = err.Error()
					}
					continue
				}
				mine = append(mine, t1.Sub(t0))
				ended.Add(1)
			}
			mu.Lock()
			all = append(all, mine...)
			errs += myErrs
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		})
	}
	sleep(ctx, warmup)
	start := time.Now()
	from.Store(start.UnixNano())
	sleep(ctx, d)
	for i := 0; i < 50 && ended.Load() < int64(2*workers) && ctx.Err() == nil; i++ {
		sleep(ctx, d/10) // a slow side: stretch the window
	}
	end := time.Now()
	to.Store(end.UnixNano())
	// Give operations in flight a moment to end, then cut them off.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cancel()
		<-done
	}
	if err := ctx.Err(); err != nil {
		return measure{}, err
	}
	m := measure{Rate: float64(len(all)) / end.Sub(start).Seconds(), Errors: errs, FirstErr: firstErr}
	m.latencies(all)
	if len(all) == 0 && errs > 0 {
		return m, fmt.Errorf("every operation failed: %s", firstErr)
	}
	return m, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// httpClient is a keep-alive client with a connection for each of n
// workers.
func httpClient(n int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: n,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		},
	}
}

// get fetches url with an optional bearer token, reads the body and wants
// a 200.
func get(ctx context.Context, c *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
