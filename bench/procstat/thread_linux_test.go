package procstat

import (
	"runtime"
	"testing"
	"time"
)

// TestThreadCountsOnlyThisThread burns CPU on a locked thread and checks
// that Thread sees it, while a thread that only sleeps meanwhile sees
// (almost) nothing.
func TestThreadCountsOnlyThisThread(t *testing.T) {
	idle := make(chan time.Duration)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before := Thread()
		time.Sleep(300 * time.Millisecond)
		idle <- Thread() - before
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := Thread()
	x := 0
	for start := time.Now(); time.Since(start) < 10*time.Second; x++ {
		if x%1_000_000 == 0 && Thread()-before >= 50*time.Millisecond {
			break
		}
	}
	busy := Thread() - before
	slept := <-idle
	if busy < 50*time.Millisecond {
		t.Errorf("busy thread (%d iterations) used %v of CPU, want >= 50ms", x, busy)
	}
	if slept > 20*time.Millisecond {
		t.Errorf("sleeping thread used %v of CPU, want about 0", slept)
	}
}
