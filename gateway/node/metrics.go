package node

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// metrics are the node's own instruments (datastore, router); the proxy
// (gateway/proxymetrics), the cluster and cache report theirs separately.
// See the README's Metrics section.
type metrics struct {
	queries        *prometheus.HistogramVec
	reachable      prometheus.Gauge
	rebuilds       prometheus.Counter
	routes         prometheus.Gauge
	rebuildSeconds *prometheus.HistogramVec

	// up mirrors reachable for the Kong compat collector.
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

// cacheCollector reads the entity cache's counters at scrape time.
type cacheCollector struct {
	c       *cache.Cache
	backend string

	hits, misses, negHits, staleHits *prometheus.Desc
	evictions, entries, bytes        *prometheus.Desc
}

func newCacheCollector(c *cache.Cache, backend string) *cacheCollector {
	labels := []string{"entity", "backend"}
	return &cacheCollector{
		c: c, backend: backend,
		hits:      prometheus.NewDesc("sluice_cache_hits_total", "Entity cache lookups answered with a cached entity.", labels, nil),
		misses:    prometheus.NewDesc("sluice_cache_misses_total", "Entity cache lookups that loaded from the datastore.", labels, nil),
		negHits:   prometheus.NewDesc("sluice_cache_negative_hits_total", "Entity cache lookups answered with a cached miss.", labels, nil),
		staleHits: prometheus.NewDesc("sluice_cache_stale_hits_total", "Expired entities served because the datastore failed (db_resurrect_ttl).", labels, nil),
		evictions: prometheus.NewDesc("sluice_cache_evictions_total", "Entries the cache backend evicted to make room.", []string{"backend"}, nil),
		entries:   prometheus.NewDesc("sluice_cache_entries", "Entries held, by kind (positive, negative).", []string{"kind", "backend"}, nil),
		bytes:     prometheus.NewDesc("sluice_cache_bytes", "Bytes the cache backend holds.", []string{"backend"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.hits, cc.misses, cc.negHits, cc.staleHits, cc.evictions, cc.entries, cc.bytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := cc.c.Stats()
	for _, k := range s.Kinds {
		if _, ok := entity.Schemas[k.Kind]; !ok {
			continue // synthetic keys (router:version) are never looked up
		}
		kind := string(k.Kind)
		ch <- prometheus.MustNewConstMetric(cc.hits, prometheus.CounterValue, float64(k.Hits), kind, cc.backend)
		ch <- prometheus.MustNewConstMetric(cc.misses, prometheus.CounterValue, float64(k.Misses), kind, cc.backend)
		ch <- prometheus.MustNewConstMetric(cc.negHits, prometheus.CounterValue, float64(k.NegativeHits), kind, cc.backend)
		ch <- prometheus.MustNewConstMetric(cc.staleHits, prometheus.CounterValue, float64(k.StaleHits), kind, cc.backend)
	}
	ch <- prometheus.MustNewConstMetric(cc.entries, prometheus.GaugeValue, float64(s.Entries), "positive", cc.backend)
	ch <- prometheus.MustNewConstMetric(cc.entries, prometheus.GaugeValue, float64(s.NegativeEntries), "negative", cc.backend)
	var evictions, bytes float64
	if s.HasBackendStats {
		evictions, bytes = float64(max(s.BackendStats.Evictions, 0)), float64(max(s.BackendStats.Bytes, 0))
	}
	ch <- prometheus.MustNewConstMetric(cc.evictions, prometheus.CounterValue, evictions, cc.backend)
	ch <- prometheus.MustNewConstMetric(cc.bytes, prometheus.GaugeValue, bytes, cc.backend)
}
