package node

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestRebuildsCoalesceUnderAStorm: a request every millisecond for half a
// second costs at most one build per gap, and every request is covered by a
// build that started after it.
func TestRebuildsCoalesceUnderAStorm(t *testing.T) {
	var builds, seen atomic.Int64
	var requested atomic.Int64
	r := newRebuilder("test", slog.New(slog.DiscardHandler), func(context.Context) error {
		builds.Add(1)
		seen.Store(requested.Load()) // what this build read
		return nil
	})
	r.minGap = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx)

	start := time.Now()
	var gen uint64
	for time.Since(start) < 500*time.Millisecond {
		requested.Add(1)
		gen = r.request(false)
		time.Sleep(time.Millisecond)
	}
	last := requested.Load()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := r.wait(wctx, gen); err != nil {
		t.Fatalf("the last request was never built: %v", err)
	}
	if seen.Load() != last {
		t.Errorf("the last build read change %d, want %d: a waiter returned before a build covered its change", seen.Load(), last)
	}
	elapsed := time.Since(start)
	if max := int64(elapsed/r.minGap) + rebuildBurst; builds.Load() > max {
		t.Errorf("%d builds in %v, want at most %d (a burst of %d, then one per %v)", builds.Load(), elapsed, max, rebuildBurst, r.minGap)
	}
	t.Logf("%d requests cost %d builds in %v", last, builds.Load(), elapsed)
}

// TestRebuildsOneAtATimeAreNotDelayed: changes that come one at a time,
// even back to back, start their build at once.
func TestRebuildsOneAtATimeAreNotDelayed(t *testing.T) {
	r := newRebuilder("test", slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
	r.minGap = time.Hour // any wait for a token would show
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx)
	for i := range rebuildBurst {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.wait(wctx, r.request(false))
		wcancel()
		if err != nil {
			t.Fatalf("change %d waited for a rebuild slot: %v", i, err)
		}
	}
}

// TestUrgentRebuildSkipsTheRateLimit: once the burst is spent, a remote
// change waits for a token, but a write on this node does not.
func TestUrgentRebuildSkipsTheRateLimit(t *testing.T) {
	r := newRebuilder("test", slog.New(slog.DiscardHandler), func(context.Context) error { return nil })
	r.minGap = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx)
	for range rebuildBurst {
		if err := r.wait(ctx, r.request(false)); err != nil {
			t.Fatal(err)
		}
	}
	short, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer scancel()
	if err := r.wait(short, r.request(false)); err == nil {
		t.Fatal("a remote change was built with the burst spent; want it held back")
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := r.wait(wctx, r.request(true)); err != nil {
		t.Fatalf("a local write waited for the rate limit: %v", err)
	}
}
