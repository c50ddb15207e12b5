package snapshot

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
)

var quiet = slog.New(slog.DiscardHandler)

// TestRebuildsCoalesceUnderAStorm: a full-rebuild request every
// millisecond for half a second costs at most one rebuild per gap, and
// every request is covered by a rebuild that started after it.
func TestRebuildsCoalesceUnderAStorm(t *testing.T) {
	var builds, seen atomic.Int64
	var requested atomic.Int64
	w := newWorker("test", quiet, func(context.Context, work) error {
		builds.Add(1)
		seen.Store(requested.Load()) // what this rebuild read
		return nil
	})
	w.minGap = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)

	start := time.Now()
	var gen uint64
	for time.Since(start) < 500*time.Millisecond {
		requested.Add(1)
		gen = w.request(nil, true, false)
		time.Sleep(time.Millisecond)
	}
	last := requested.Load()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := w.wait(wctx, gen); err != nil {
		t.Fatalf("the last request was never built: %v", err)
	}
	if seen.Load() != last {
		t.Errorf("the last rebuild read change %d, want %d: a waiter returned before a rebuild covered its change", seen.Load(), last)
	}
	elapsed := time.Since(start)
	if max := int64(elapsed/w.minGap) + rebuildBurst; builds.Load() > max {
		t.Errorf("%d rebuilds in %v, want at most %d (a burst of %d, then one per %v)", builds.Load(), elapsed, max, rebuildBurst, w.minGap)
	}
	t.Logf("%d requests cost %d rebuilds in %v", last, builds.Load(), elapsed)
}

// TestRebuildsOneAtATimeAreNotDelayed: rebuilds that come one at a time,
// even back to back, start at once.
func TestRebuildsOneAtATimeAreNotDelayed(t *testing.T) {
	w := newWorker("test", quiet, func(context.Context, work) error { return nil })
	w.minGap = time.Hour // any wait for a token would show
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	for i := range rebuildBurst {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.wait(wctx, w.request(nil, true, false))
		wcancel()
		if err != nil {
			t.Fatalf("rebuild %d waited for a slot: %v", i, err)
		}
	}
}

// TestUrgentRebuildSkipsTheRateLimit: once the burst is spent, a remote
// rebuild waits for a token, but a write on this node and an incremental
// change do not.
func TestUrgentRebuildSkipsTheRateLimit(t *testing.T) {
	w := newWorker("test", quiet, func(context.Context, work) error { return nil })
	w.minGap = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	for range rebuildBurst {
		if err := w.wait(ctx, w.request(nil, true, false)); err != nil {
			t.Fatal(err)
		}
	}
	short, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer scancel()
	held := w.request(nil, true, false)
	if err := w.wait(short, held); err == nil {
		t.Fatal("a remote rebuild ran with the burst spent; want it held back")
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := w.wait(wctx, w.request(nil, true, true)); err != nil {
		t.Fatalf("a local write waited for the rate limit: %v", err)
	}
	// The urgent rebuild covered the held one; an incremental change
	// (no rebuild) is never held back either.
	if err := w.wait(wctx, w.request([]entity.CacheKey{{Kind: entity.KindRoute, ID: "r"}}, false, false)); err != nil {
		t.Fatalf("an incremental change waited for the rate limit: %v", err)
	}
}

// TestFailedApplyKeepsItsWork: the keys of a failed apply are applied by
// the retry, merged with those that arrived meanwhile, and the waiter is
// released only then.
func TestFailedApplyKeepsItsWork(t *testing.T) {
	var mu sync.Mutex
	var calls []work
	w := newWorker("test", quiet, func(_ context.Context, wk work) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, wk)
		if len(calls) == 1 {
			return errors.New("datastore down")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	a, b := entity.CacheKey{Kind: entity.KindRoute, ID: "a"}, entity.CacheKey{Kind: entity.KindRoute, ID: "b"}
	w.request([]entity.CacheKey{a}, false, false)
	gen := w.request([]entity.CacheKey{b}, false, false)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := w.wait(wctx, gen); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	last := calls[len(calls)-1]
	if _, ok := last.keys[a]; !ok || len(calls) < 2 {
		t.Fatalf("after a failed apply, calls %+v: the retry did not carry key a", calls)
	}
	if _, ok := last.keys[b]; !ok {
		t.Fatalf("the last apply %+v lacks key b", last)
	}
}
