package node

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the node's own instruments: the route table and snapshot
// rebuilds. The proxy (gateway/proxymetrics), the datastore lookups
// (gateway/store/storeobs), the cache and the cluster report theirs
// separately. See the README's Metrics section.
type metrics struct {
	rebuilds       prometheus.Counter
	routes         prometheus.Gauge
	rebuildSeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		rebuilds: f.NewCounter(prometheus.CounterOpts{
			Name: "sluice_router_rebuilds_total", Help: "Route table rebuilds.",
		}),
		routes: f.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_router_routes", Help: "Routes in the current route table.",
		}),
		rebuildSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_snapshot_rebuild_duration_seconds",
			Help:    "Time to rebuild a snapshot (routes: the route table; plugins: the plugin set) from the datastore; failed rebuilds are not counted.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"snapshot"}),
	}
}

// timed wraps the build of snapshot so that every successful build is
// observed in sluice_snapshot_rebuild_duration_seconds.
func (m *metrics) timed(snapshot string, build func(context.Context) error) func(context.Context) error {
	h := m.rebuildSeconds.WithLabelValues(snapshot)
	return func(ctx context.Context) error {
		start := time.Now()
		if err := build(ctx); err != nil {
			return err
		}
		h.Observe(time.Since(start).Seconds())
		return nil
	}
}

func (m *metrics) routerRebuilt(routes int) {
	m.rebuilds.Inc()
	m.routes.Set(float64(routes))
}
