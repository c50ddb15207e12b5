package procstat

import (
	"testing"
	"time"
)

// ReportCPU reports the process CPU time used since start (a Self
// reading), per operation, as the benchmark metric "cpu-ns/op":
//
//	defer procstat.ReportCPU(b, procstat.Self())
//
// On a shared, loaded machine wall time per op includes time spent
// descheduled; CPU time does not. Nothing is reported where Self is 0.
func ReportCPU(b *testing.B, start time.Duration) {
	if d := Self() - start; d > 0 && b.N > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
