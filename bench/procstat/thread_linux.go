package procstat

import (
	"syscall"
	"time"
)

// Thread returns the user plus system CPU time the calling OS thread has
// used (getrusage RUSAGE_THREAD): lock the goroutine to its thread
// (runtime.LockOSThread) around what is measured, so that neither other
// goroutines nor the GC's background workers on other threads count.
func Thread() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
