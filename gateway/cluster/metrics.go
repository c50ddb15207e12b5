package cluster

import (
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the cluster's instruments; see README.md, Metrics.
type metrics struct {
	emitted      prometheus.Counter
	applied      prometheus.Counter
	lag          prometheus.Histogram
	pollDuration prometheus.Histogram
	pollErrors   prometheus.Counter
}

// lagBuckets returns the lag histogram's bounds (seconds) for poll interval
// freq. With polling alone the lag is close to uniform on [0, freq] plus the
// time to apply, so the bounds step by freq/10 up to 2 x freq: p50 and p99
// are resolved to a tenth of the interval, and a lag past one interval (a
// missed poll, a slow datastore) still lands in a bucket of its own. Below
// them, push's milliseconds; above them, 3, 5 and 10 intervals for a node
// that fell behind. Nodes of a cluster share db_update_frequency, so they
// share the bounds; a node with another frequency has other bounds, and its
// quantiles are to be taken per instance (as the dashboards do).
func lagBuckets(freq time.Duration) []float64 {
	f := freq.Seconds()
	var b []float64
	for _, push := range []float64{.001, .0025, .005, .01, .025, .05} {
		if push < f/10 {
			b = append(b, push)
		}
	}
	for k := 1; k <= 20; k++ {
		b = append(b, float64(k)*f/10)
	}
	b = append(b, 3*f, 5*f, 10*f)
	// k*f/10 is not exact in binary: round to the microsecond so that the
	// exposed bounds read as the decimals they stand for.
	for i, v := range b {
		b[i] = math.Round(v*1e6) / 1e6
	}
	slices.Sort(b)
	return slices.Compact(b)
}

// newMetrics registers the instruments with reg; a nil reg registers them
// nowhere. freq is the poll interval, which sets the lag buckets.
func newMetrics(reg prometheus.Registerer, freq time.Duration) *metrics {
	f := promauto.With(reg)
	return &metrics{
		emitted: f.NewCounter(prometheus.CounterOpts{
			Name: "sluice_cluster_events_emitted_total",
			Help: "Invalidation events this node wrote to the datastore.",
		}),
		applied: f.NewCounter(prometheus.CounterOpts{
			Name: "sluice_cluster_events_applied_total",
			Help: "Invalidation events from other nodes applied on this node.",
		}),
		lag: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_invalidation_lag_seconds",
			Help:    "Time from an event's commit (datastore clock) to its application on this node.",
			Buckets: lagBuckets(freq),
		}),
		pollDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_cluster_poll_duration_seconds",
			Help:    "Duration of one poll for cluster events.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		pollErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "sluice_cluster_poll_errors_total",
			Help: "Polls for cluster events that failed.",
		}),
	}
}
