package cluster

import (
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

// lagBuckets cover push (milliseconds) to slow polling (tens of seconds).
var lagBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60}

// newMetrics registers the instruments with reg; a nil reg registers them
// nowhere.
func newMetrics(reg prometheus.Registerer) *metrics {
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
			Buckets: lagBuckets,
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
