package snapshot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// work is what a worker has to do: a full rebuild, or the entity keys whose
// changes it has not applied yet, or both (full covers keys).
type work struct {
	full bool
	keys map[entity.CacheKey]struct{}
}

func (w *work) add(keys []entity.CacheKey, full bool) {
	w.full = w.full || full
	for _, k := range keys {
		if w.keys == nil {
			w.keys = make(map[entity.CacheKey]struct{})
		}
		w.keys[k] = struct{}{}
	}
}

func (w *work) merge(o work) {
	w.full = w.full || o.full
	for k := range o.keys {
		w.add([]entity.CacheKey{k}, false)
	}
}

func (w *work) empty() bool { return !w.full && len(w.keys) == 0 }

// worker applies the changes to one snapshot (the route table, the plugin
// set) in one goroutine. Requests coalesce: however many arrive while an
// apply runs, one more follows and covers them all. Full rebuilds are
// rate-limited by a token bucket: a burst of rebuildBurst starts at once,
// after which they start at most once per minGap, so a storm of lost-event
// recoveries costs twenty rebuilds per second instead of one each (Kong
// #4974); writes made on this node are never held back. Incremental
// applies cost little and are never held back.
//
// Generations make waiting exact: request returns the generation that
// covers the caller's change, and wait returns once an apply that started
// after the request has finished. A failed apply (datastore down) keeps
// the previous snapshot serving, keeps its work and is retried with
// backoff.
type worker struct {
	name   string
	apply  func(ctx context.Context, w work) error
	log    *slog.Logger
	kick   chan struct{}
	minGap time.Duration

	// mu guards the fields below.
	mu        sync.Mutex
	requested uint64
	done      uint64
	pending   work
	// urgent is set by an urgent request and cleared by the apply that
	// covers it.
	urgent bool
	// changed is closed and replaced each time done advances.
	changed chan struct{}
}

// rebuildGap is the least time between the starts of two full rebuilds
// once a burst of rebuildBurst is spent.
const (
	rebuildGap   = 50 * time.Millisecond
	rebuildBurst = 20
)

func newWorker(name string, log *slog.Logger, apply func(context.Context, work) error) *worker {
	return &worker{name: name, apply: apply, log: log, kick: make(chan struct{}, 1), changed: make(chan struct{}),
		minGap: rebuildGap}
}

// request adds keys (and a full rebuild when full) to the pending work and
// returns the generation that will include every change committed before
// the call. An urgent request (a write on this node, whose client waits
// for it) is not held back by the rate limit.
func (w *worker) request(keys []entity.CacheKey, full, urgent bool) uint64 {
	w.mu.Lock()
	w.requested++
	gen := w.requested
	w.pending.add(keys, full)
	w.urgent = w.urgent || urgent
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default: // a kick is already pending: it will see requested
	}
	return gen
}

// wait blocks until generation gen is applied or ctx is done.
func (w *worker) wait(ctx context.Context, gen uint64) error {
	for {
		w.mu.Lock()
		if w.done >= gen {
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// built reports whether at least one apply succeeded.
func (w *worker) built() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done > 0
}

// run applies pending work until ctx is done.
func (w *worker) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	tokens, refilled := float64(rebuildBurst), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		tokens = min(rebuildBurst, tokens+float64(time.Since(refilled))/float64(w.minGap))
		refilled = time.Now()
		if tokens < 1 && w.fullPending() && !w.isUrgent() {
			// Let more changes pile up (one rebuild covers them all),
			// unless a write on this node asks meanwhile.
			if !w.waitToken(ctx, time.Duration((1-tokens)*float64(w.minGap))) {
				return
			}
			tokens, refilled = 1, time.Now()
		}
		w.mu.Lock()
		target := w.requested
		todo := w.pending
		w.pending = work{}
		w.urgent = false // this apply covers every request so far
		w.mu.Unlock()
		if todo.full {
			tokens = max(tokens-1, 0)
		}
		if err := w.do(ctx, todo); err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("snapshot update failed; the previous one keeps serving", "snapshot", w.name,
				"full", todo.full, "changes", len(todo.keys), "err", err, "retry_in", backoff)
			w.mu.Lock()
			w.pending.merge(todo)
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			w.retry()
			continue
		}
		backoff = 100 * time.Millisecond
		w.mu.Lock()
		w.done = target
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

// do applies todo; nothing to do is done.
func (w *worker) do(ctx context.Context, todo work) error {
	if todo.empty() {
		return nil
	}
	return w.apply(ctx, todo)
}

func (w *worker) isUrgent() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.urgent
}

func (w *worker) fullPending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending.full
}

// waitToken waits d for the next rebuild slot, returning early when an
// urgent request arrives, and false when ctx is done.
func (w *worker) waitToken(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-w.kick:
			if w.isUrgent() {
				return true
			}
		}
	}
}

// retry re-arms the loop without asking for a new generation.
func (w *worker) retry() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}
