package node

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rebuilder rebuilds one snapshot (the route table, the plugin set) in one
// goroutine. Requests coalesce: however many arrive while a build runs, one
// more build follows, and it covers them all. Builds start at most once per
// minGap, so that a storm of changes (hundreds per second) costs a few
// rebuilds per second instead of one per change, and the proxy keeps its
// CPU (Kong #4974); the first change after a quiet spell builds at once.
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
	// changed is closed and replaced each time done advances.
	changed chan struct{}
}

func newRebuilder(name string, log *slog.Logger, build func(ctx context.Context) error) *rebuilder {
	return &rebuilder{name: name, build: build, log: log, kick: make(chan struct{}, 1), changed: make(chan struct{}),
		minGap: rebuildGap}
}

// request asks for a rebuild and returns the generation that will include
// every change committed before the call.
func (r *rebuilder) request() uint64 {
	r.mu.Lock()
	r.requested++
	gen := r.requested
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

// rebuildGap is the least time between the starts of two builds.
const rebuildGap = 100 * time.Millisecond

// run builds on request until ctx is done.
func (r *rebuilder) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		if wait := r.minGap - time.Since(last); wait > 0 {
			select { // let more changes pile up: one build covers them all
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		r.mu.Lock()
		target := r.requested
		pending := target > r.done
		r.mu.Unlock()
		if !pending {
			continue
		}
		last = time.Now()
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

// retry re-arms the loop without asking for a new generation.
func (r *rebuilder) retry() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
