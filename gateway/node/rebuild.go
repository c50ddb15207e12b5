package node

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rebuilder rebuilds one snapshot (the route table, the plugin set) in one
// goroutine. Requests coalesce: however many arrive while a build runs, one
// more build follows, and it covers them all. Builds are rate-limited by a
// token bucket: a burst of rebuildBurst builds starts at once, after which
// builds start at most once per minGap. A storm of changes (hundreds per
// second) then costs twenty rebuilds per second instead of one per change,
// and the proxy keeps its CPU (Kong #4974), while changes that come one at a
// time, and writes made on this node, are never delayed.
//
// Generations make waiting exact: request returns the generation that
// covers the caller's change, and wait returns once a build that started
// after the request has finished. A build that fails (datastore down) keeps
// the previous snapshot serving and is retried with backoff.
type rebuilder struct {
	name   string
	build  func(ctx context.Context) error
	log    *slog.Logger
	kick   chan struct{}
	minGap time.Duration

	// mu guards the fields below.
	mu        sync.Mutex
	requested uint64
	done      uint64
	// urgent is set by an urgent request and cleared by the build that
	// covers it.
	urgent bool
	// changed is closed and replaced each time done advances.
	changed chan struct{}
}

func newRebuilder(name string, log *slog.Logger, build func(ctx context.Context) error) *rebuilder {
	return &rebuilder{name: name, build: build, log: log, kick: make(chan struct{}, 1), changed: make(chan struct{}),
		minGap: rebuildGap}
}

// request asks for a rebuild and returns the generation that will include
// every change committed before the call. An urgent request (a write on
// this node, whose client waits for it) is not held back by the rate limit.
func (r *rebuilder) request(urgent bool) uint64 {
	r.mu.Lock()
	r.requested++
	gen := r.requested
	r.urgent = r.urgent || urgent
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default: // a kick is already pending: it will see requested
	}
	return gen
}

// wait blocks until generation gen is built or ctx is done.
func (r *rebuilder) wait(ctx context.Context, gen uint64) error {
	for {
		r.mu.Lock()
		if r.done >= gen {
			r.mu.Unlock()
			return nil
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// built reports whether at least one build succeeded.
func (r *rebuilder) built() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done > 0
}

// rebuildGap is the least time between the starts of two builds once a
// burst of rebuildBurst builds is spent.
const (
	rebuildGap   = 50 * time.Millisecond
	rebuildBurst = 20
)

// run builds on request until ctx is done.
func (r *rebuilder) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	tokens, refilled := float64(rebuildBurst), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		tokens = min(rebuildBurst, tokens+float64(time.Since(refilled))/float64(r.minGap))
		refilled = time.Now()
		if tokens < 1 && !r.isUrgent() {
			// Let more changes pile up (one build covers them all), unless
			// a write on this node asks meanwhile.
			if !r.waitToken(ctx, time.Duration((1-tokens)*float64(r.minGap))) {
				return
			}
			tokens, refilled = 1, time.Now()
		}
		r.mu.Lock()
		target := r.requested
		pending := target > r.done
		r.urgent = false // this build covers every request so far
		r.mu.Unlock()
		if !pending {
			continue
		}
		tokens = max(tokens-1, 0)
		if err := r.build(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("snapshot rebuild failed; the previous one keeps serving", "snapshot", r.name, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			r.retry()
			continue
		}
		backoff = 100 * time.Millisecond
		r.mu.Lock()
		r.done = target
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
}

// isUrgent reports whether an urgent request is pending.
func (r *rebuilder) isUrgent() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.urgent
}

// waitToken waits d for the next build slot, returning early when an urgent
// request arrives, and false when ctx is done.
func (r *rebuilder) waitToken(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-r.kick:
			if r.isUrgent() {
				return true
			}
		}
	}
}

// retry re-arms the loop without asking for a new generation.
func (r *rebuilder) retry() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
