package snapshot

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the snapshots' instruments; see README.md.
type metrics struct {
	rebuilds       prometheus.Counter
	routes         prometheus.Gauge
	rebuildSeconds *prometheus.HistogramVec
	applySeconds   *prometheus.HistogramVec
	changes        *prometheus.CounterVec
}

// newMetrics registers the instruments with reg; nil keeps them private.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		rebuilds: f.NewCounter(prometheus.CounterOpts{
			Name: "sluice_router_rebuilds_total", Help: "Full route table rebuilds (start, lost events, datastore errors, large batches); single changes are applied without one.",
		}),
		routes: f.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_router_routes", Help: "Routes in the current route table.",
		}),
		rebuildSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_snapshot_rebuild_duration_seconds",
			Help:    "Time to rebuild a snapshot (routes: the route table; plugins: the plugin set) from everything in the datastore; failed rebuilds are not counted.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"snapshot"}),
		applySeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_snapshot_apply_duration_seconds",
			Help:    "Time to apply a batch of changed entities to a snapshot (reads of those entities included) and swap it in; failed applies are not counted.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"snapshot"}),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_snapshot_changes_applied_total",
			Help: "Changed entities applied to a snapshot without a full rebuild.",
		}, []string{"snapshot"}),
	}
}

// timed wraps a snapshot's apply so that each success is observed as a
// rebuild or an apply.
func (m *metrics) timed(snapshot string, apply func(context.Context, work) (full bool, err error)) func(context.Context, work) error {
	rebuild, incr := m.rebuildSeconds.WithLabelValues(snapshot), m.applySeconds.WithLabelValues(snapshot)
	changes := m.changes.WithLabelValues(snapshot)
	return func(ctx context.Context, w work) error {
		start := time.Now()
		full, err := apply(ctx, w)
		if err != nil {
			return err
		}
		if full {
			rebuild.Observe(time.Since(start).Seconds())
		} else {
			incr.Observe(time.Since(start).Seconds())
			changes.Add(float64(len(w.keys)))
		}
		return nil
	}
}

func (m *metrics) rebuilt(routes int) {
	m.rebuilds.Inc()
	m.routes.Set(float64(routes))
}

func (m *metrics) setRoutes(n int) { m.routes.Set(float64(n)) }
