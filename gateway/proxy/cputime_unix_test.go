//go:build unix

package proxy

import (
	"syscall"
	"time"
)

// cpuTime returns the process CPU time (user + system). Benchmarks report
// its delta per op as "cpu-ns/op": on a shared, loaded machine wall time
// per op includes time spent descheduled; CPU time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
