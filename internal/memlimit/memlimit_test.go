package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	const mib = 1 << 20
	opts := Options{Arena: 700 * mib, Floor: 64 * mib}
	for _, tt := range []struct {
		name           string
		live, overhead uint64
		want           int64
	}{
		{"room for as much garbage as the heap outside the arena", 900 * mib, 20 * mib, 900*mib + 200*mib + 20*mib},
		{"at least the floor", 710 * mib, 0, 710*mib + 64*mib},
		{"arena live before any GC measured it", 10 * mib, 0, 700*mib + 64*mib},
		{"no arena: GOGC=100's goal", 300 * mib, 0, 600 * mib},
	} {
		o := opts
		if tt.name == "no arena: GOGC=100's goal" {
			o.Arena = 0
		}
		if got := Limit(o, tt.live, tt.overhead); got != tt.want {
			t.Errorf("%s: Limit = %d MiB, want %d MiB", tt.name, got/mib, tt.want/mib)
		}
	}
}

// TestRun checks that Run sets a limit above the live heap while it runs,
// restores the previous one when its context ends, and leaves an
// operator's GOMEMLIMIT alone.
func TestRun(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	prev := debug.SetMemoryLimit(-1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, Options{Arena: 256 << 20, Interval: 10 * time.Millisecond}) }()
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) == prev {
		if time.Now().After(deadline) {
			t.Fatal("Run set no memory limit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := debug.SetMemoryLimit(-1); got < 256<<20+64<<20 || got == math.MaxInt64 {
		t.Errorf("limit %d, want at least the arena plus the floor", got)
	}
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("limit after Run: %d, want the previous %d", got, prev)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	if Enabled(Options{Arena: 1 << 20}) {
		t.Error("Enabled with GOMEMLIMIT set")
	}
	if Enabled(Options{}) {
		t.Error("Enabled without an arena")
	}
}
