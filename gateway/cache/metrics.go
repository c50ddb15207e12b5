package cache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// Collector exports a Cache's Stats as the sluice_cache_* families, read
// at scrape time; the request path counts with atomics and never touches
// Prometheus. Each series carries the backend label (Options.Backend).
type Collector struct {
	c *Cache

	hits, misses, negHits, staleHits *prometheus.Desc
	evictions, entries, bytes        *prometheus.Desc
}

// NewCollector returns the collector of c, to register with a
// prometheus.Registerer.
func NewCollector(c *Cache) *Collector {
	labels := []string{"entity", "backend"}
	return &Collector{
		c:         c,
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
func (cc *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.hits, cc.misses, cc.negHits, cc.staleHits, cc.evictions, cc.entries, cc.bytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (cc *Collector) Collect(ch chan<- prometheus.Metric) {
	s := cc.c.Stats()
	backend := cc.c.opts.Backend
	for _, k := range s.Kinds {
		if _, ok := entity.Schemas[k.Kind]; !ok {
			continue // synthetic keys (router:version) are never looked up
		}
		kind := string(k.Kind)
		ch <- prometheus.MustNewConstMetric(cc.hits, prometheus.CounterValue, float64(k.Hits), kind, backend)
		ch <- prometheus.MustNewConstMetric(cc.misses, prometheus.CounterValue, float64(k.Misses), kind, backend)
		ch <- prometheus.MustNewConstMetric(cc.negHits, prometheus.CounterValue, float64(k.NegativeHits), kind, backend)
		ch <- prometheus.MustNewConstMetric(cc.staleHits, prometheus.CounterValue, float64(k.StaleHits), kind, backend)
	}
	ch <- prometheus.MustNewConstMetric(cc.entries, prometheus.GaugeValue, float64(s.Entries), "positive", backend)
	ch <- prometheus.MustNewConstMetric(cc.entries, prometheus.GaugeValue, float64(s.NegativeEntries), "negative", backend)
	var evictions, bytes float64
	if s.HasBackendStats {
		evictions, bytes = float64(max(s.BackendStats.Evictions, 0)), float64(max(s.BackendStats.Bytes, 0))
	}
	ch <- prometheus.MustNewConstMetric(cc.evictions, prometheus.CounterValue, evictions, backend)
	ch <- prometheus.MustNewConstMetric(cc.bytes, prometheus.GaugeValue, bytes, backend)
}

var _ prometheus.Collector = (*Collector)(nil)
