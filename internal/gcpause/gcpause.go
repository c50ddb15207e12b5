// Package gcpause exports the Go runtime's histogram of GC stop-the-world
// pauses (runtime/metrics "/sched/pauses/total/gc:seconds") as the
// Prometheus histogram sluice_gc_pauses_seconds, with the runtime's own
// bucket bounds (four per power of two, so neighbouring bounds differ by at
// most 25 %) from 1 µs to about 1 s.
//
// client_golang's Go collector can export the same runtime histogram
// (go_gc_pauses_seconds), but merges its buckets into bounds a factor of
// about 11 apart (0.92 ms, 10.5 ms): too coarse for a p99 held against a
// 1 ms target, and go_gc_duration_seconds' quantiles cover only the last
// 256 pauses.
package gcpause

import (
	"math"
	"runtime/metrics"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metric is the runtime histogram read.
const metric = "/sched/pauses/total/gc:seconds"

// The exposed bounds: runtime bounds outside [minBound, maxBound] are
// folded into their neighbours.
const (
	minBound = 1e-6
	maxBound = 1.1
)

// Collector is a prometheus.Collector of sluice_gc_pauses_seconds. It
// reads the runtime at scrape time.
type Collector struct {
	desc *prometheus.Desc
	// mu guards sample, reused by every scrape.
	mu     sync.Mutex
	sample []metrics.Sample
}

// New returns the Collector.
func New() *Collector {
	return &Collector{
		desc: prometheus.NewDesc("sluice_gc_pauses_seconds",
			"Go runtime GC stop-the-world pauses (runtime/metrics "+metric+"), in the runtime's buckets from 1 µs to 1 s; the sum is estimated from bucket midpoints.", nil, nil),
		sample: []metrics.Sample{{Name: metric}},
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	metrics.Read(c.sample)
	v := c.sample[0].Value
	c.mu.Unlock()
	if v.Kind() != metrics.KindFloat64Histogram {
		return // a runtime without the metric
	}
	count, sum, buckets := convert(v.Float64Histogram())
	ch <- prometheus.MustNewConstHistogram(c.desc, count, sum, buckets)
}

// convert turns a runtime histogram (Counts[i] in [Buckets[i],
// Buckets[i+1])) into cumulative Prometheus buckets keyed by upper bound,
// keeping the bounds within [minBound, maxBound], and estimates the sum
// from the buckets' midpoints (their finite bound at the edges).
func convert(h *metrics.Float64Histogram) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = map[float64]uint64{}
	for i, n := range h.Counts {
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		count += n
		switch {
		case math.IsInf(lo, -1):
			sum += float64(n) * max(hi, 0)
		case math.IsInf(hi, 1):
			sum += float64(n) * lo
		default:
			sum += float64(n) * (lo + hi) / 2
		}
		if hi >= minBound && hi <= maxBound {
			buckets[hi] = count
		}
	}
	return count, sum, buckets
}

var _ prometheus.Collector = (*Collector)(nil)
