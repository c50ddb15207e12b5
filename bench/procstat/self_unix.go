//go:build unix

package procstat

import (
	"syscall"
	"time"
)

// Self returns the user plus system CPU time this process has used, with
// getrusage's microsecond resolution (finer than /proc's clock ticks).
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
