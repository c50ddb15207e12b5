package storeobs

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sluice-gw/sluice/gateway/store"
)

// metrics are the datastore families.
type metrics struct {
	queries   *prometheus.HistogramVec
	reachable prometheus.Gauge
	// up mirrors reachable for Reachable.
	up atomic.Bool
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		queries: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_datastore_query_duration_seconds", Help: "Datastore lookups made on cache misses, by entity kind.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"operation"}),
		reachable: f.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_datastore_reachable", Help: "1 when the last datastore check or lookup succeeded, else 0.",
		}),
	}
}

// query records one lookup of kind op begun at start: its duration, and
// the datastore's reachability as its outcome shows it (a not-found answer
// is an answer; an error other than store.ErrUnavailable says nothing).
func (m *metrics) query(op string, start time.Time, err error) {
	m.queries.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, store.ErrNotFound) {
		m.setReachable(true)
	} else if errors.Is(err, store.ErrUnavailable) {
		m.setReachable(false)
	}
}

func (m *metrics) setReachable(ok bool) {
	m.up.Store(ok)
	if ok {
		m.reachable.Set(1)
	} else {
		m.reachable.Set(0)
	}
}
