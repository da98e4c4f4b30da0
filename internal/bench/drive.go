package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// op is one operation of a worker, such as publishing one event.
type op func(ctx context.Context) error

// drive runs n operations spread over workers (each op is one worker,
// taking the next operation while any is left), timing each, and reports
// progress as step. It returns the latencies, the time the whole took and
// the first error.
func (r *runner) drive(ctx context.Context, step string, n int, workers []op) (latencies, time.Duration, error) {
	var next, done atomic.Int64
	lat := make([]latencies, len(workers))
	errs := make([]error, len(workers))
	stop := make(chan struct{})
	var prog sync.WaitGroup
	prog.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.progress(step, int(done.Load()), n)
			}
		}
	})
	start := time.Now()
	var wg sync.WaitGroup
	for w, f := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if ctx.Err() != nil {
					errs[w] = context.Cause(ctx)
					return
				}
				t0 := time.Now()
				if err := f(ctx); err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	prog.Wait()
	r.progress(step, int(done.Load()), n)
	var all latencies
	for _, l := range lat {
		all = append(all, l...)
	}
	for _, err := range errs {
		if err != nil {
			return all, elapsed, fmt.Errorf("%s: %w", step, err)
		}
	}
	return all, elapsed, nil
}

// paced calls f about rate times a second for d, from workers goroutines
// taking tokens, and returns how many calls succeeded and failed.
func paced(ctx context.Context, rate float64, d time.Duration, workers int, f func(ctx context.Context, w int) error) (ok, failed int64) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tokens := make(chan struct{}, max(1, int(rate)))
	var okN, failN atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range tokens {
				if err := f(context.WithoutCancel(ctx), w); err != nil {
					failN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		})
	}
	tick := 10 * time.Millisecond
	per := rate * tick.Seconds()
	t := time.NewTicker(tick)
	var owed float64
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			for owed += per; owed >= 1; owed-- {
				select {
				case tokens <- struct{}{}:
				default: // the workers are behind: the rate falls
				}
			}
		}
	}
	t.Stop()
	close(tokens)
	wg.Wait()
	return okN.Load(), failN.Load()
}
