//go:build unix

package router

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU runs fn as the benchmark loop and also reports the process CPU
// time per operation as "cpu-ns/op". On a shared, loaded machine wall time
// per op includes time spent descheduled; CPU time does not.
func reportCPU(b *testing.B, fn func()) {
	before := cpuTime()
	for b.Loop() {
		fn()
	}
	b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
