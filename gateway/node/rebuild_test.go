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
		gen = r.request()
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
	if max := int64(elapsed/r.minGap) + 1; builds.Load() > max {
		t.Errorf("%d builds in %v, want at most %d (one per %v)", builds.Load(), elapsed, max, r.minGap)
	}
	t.Logf("%d requests cost %d builds in %v", last, builds.Load(), elapsed)
}
