package node

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/proxy"
	"github.com/sluice-gw/sluice/gateway/store"
)

// metrics are the node's own instruments (proxy traffic, datastore,
// router); the cluster and cache report theirs separately. See the
// README's Metrics section.
type metrics struct {
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	upstream       *prometheus.HistogramVec
	queries        *prometheus.HistogramVec
	reachable      prometheus.Gauge
	rebuilds       prometheus.Counter
	routes         prometheus.Gauge
	rebuildSeconds *prometheus.HistogramVec
	clientErrors   *prometheus.CounterVec

	// up mirrors reachable for the Kong compat collector.
	up atomic.Bool
	// kong is set when prometheus_kong_compat is on: every matched
	// request is recorded in Kong's families.
	kong *kongMetrics
	// kongFamilies are Kong's per-request families, which the prometheus
	// plugin records in when kong is nil; pruned with the others.
	kongFamilies *kongMetrics
	// children caches the per (service, route) instruments: the request
	// path then does one map lookup instead of hashing label values into
	// each vector.
	children sync.Map // labelPair -> *routeMetrics
}

// labelPair is the (service, route) label pair of a request.
type labelPair struct{ service, route string }

// routeMetrics holds one (service, route)'s instruments.
type routeMetrics struct {
	key               labelPair
	seconds, upstream prometheus.Observer
	codes             sync.Map // int (status*2 + from upstream) -> *codeCounters
	kong              *kongRoute
}

// codeCounters are the request counters of one status code: ours and,
// with Kong compat, Kong's (nil otherwise).
type codeCounters struct{ sluice, kong prometheus.Counter }

func (cc *codeCounters) inc() {
	cc.sluice.Inc()
	if cc.kong != nil {
		cc.kong.Inc()
	}
}

// statusCodes holds the label value of every HTTP status, so that the
// request path does not format one per request.
var statusCodes = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total",
			Help: "Proxied requests by service, route and status code.",
		}, []string{"service", "route", "code"}),
		requestSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_request_duration_seconds", Help: "Time from receiving a request to the end of its response.",
			Buckets: latency,
		}, []string{"service", "route"}),
		upstream: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_upstream_duration_seconds", Help: "Time from sending a request upstream to its first response byte.",
			Buckets: latency,
		}, []string{"service", "route"}),
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
		clientErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_client_errors_total",
			Help: "Requests refused or cut short because of the client: malformed framing, a timeout reading it, a body or head over the limits, a connection closed mid-body.",
		}, []string{"reason"}),
	}
	for _, r := range proxy.ClientErrorReasons {
		m.clientErrors.WithLabelValues(r) // every reason is exported from the start, at 0
	}
	return m
}

// observe is the proxy's OnResponse hook. Requests that matched no route
// are counted with empty service and route labels, which keeps the label
// set bounded by the configured routes.
func (m *metrics) observe(o proxy.Observation) {
	if o.ClientError != "" {
		m.clientErrors.WithLabelValues(o.ClientError).Inc()
	}
	rm := m.route(o.Service, o.Route)
	status := o.Status
	if status <= 0 || status >= len(statusCodes) {
		status = 0
	}
	fromUpstream := o.Upstream > 0
	rm.counters(m, status, fromUpstream).inc()
	rm.seconds.Observe(o.Total.Seconds())
	if fromUpstream {
		rm.upstream.Observe(o.Upstream.Seconds())
	}
	if rm.kong != nil {
		rm.kong.observe(o)
	}
}

// route returns the cached instruments of (service, route), creating them
// on first use. The set stays bounded by the routes ever configured.
func (m *metrics) route(s *entity.Service, r *entity.Route) *routeMetrics {
	key := labelPair{serviceLabel(s), routeLabel(r)}
	if v, ok := m.children.Load(key); ok {
		return v.(*routeMetrics)
	}
	rm := &routeMetrics{
		key:      key,
		seconds:  m.requestSeconds.WithLabelValues(key.service, key.route),
		upstream: m.upstream.WithLabelValues(key.service, key.route),
	}
	if m.kong != nil && r != nil {
		rm.kong = m.kong.route(key.service, key.route) // Kong counts matched requests only
	}
	v, _ := m.children.LoadOrStore(key, rm)
	return v.(*routeMetrics)
}

// counters returns the request counters of a status code, with the Kong
// compat counter's source (service or kong) folded into the cache key.
func (rm *routeMetrics) counters(m *metrics, status int, fromUpstream bool) *codeCounters {
	k := status * 2
	if fromUpstream {
		k++
	}
	if v, ok := rm.codes.Load(k); ok {
		return v.(*codeCounters)
	}
	code := "other"
	if status > 0 {
		code = statusCodes[status]
	}
	cc := &codeCounters{sluice: m.requests.WithLabelValues(rm.key.service, rm.key.route, code)}
	if rm.kong != nil {
		cc.kong = rm.kong.requests(code, fromUpstream)
	}
	v, _ := rm.codes.LoadOrStore(k, cc)
	return v.(*codeCounters)
}

// prune deletes the series of every (service, route) pair that is not in
// live, from each per-route vector and from the children cache, so that a
// deleted or renamed route or service stops being exported. It runs after
// each route table rebuild, off the request path; the empty pair of
// unmatched requests is always kept.
//
// A request matched by the previous table and observed after prune
// re-creates its pair's series; the next rebuild deletes them again. An
// increment made through a child that prune has just deleted is lost,
// which only affects a route that no longer exists.
func (m *metrics) prune(live map[labelPair]bool) {
	m.children.Range(func(k, _ any) bool {
		key := k.(labelPair)
		if key == (labelPair{}) || live[key] {
			return true
		}
		m.children.Delete(key)
		labels := prometheus.Labels{"service": key.service, "route": key.route}
		for _, v := range m.perRoute() {
			v.DeletePartialMatch(labels)
		}
		return true
	})
}

// seriesDeleter is the part of a metric vector that prune uses.
type seriesDeleter interface {
	DeletePartialMatch(prometheus.Labels) int
}

// perRoute lists the vectors labelled by service and route.
func (m *metrics) perRoute() []seriesDeleter {
	vs := []seriesDeleter{m.requests, m.requestSeconds, m.upstream}
	if k := m.kongFamilies; k != nil {
		vs = append(vs, k.requests, k.bandwidth, k.kongLat, k.upstreamLat, k.reqLat)
	}
	return vs
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

// serviceLabel is Kong's service label: the name, else the host.
func serviceLabel(s *entity.Service) string {
	switch {
	case s == nil:
		return ""
	case s.Name != nil:
		return *s.Name
	}
	return s.Host
}

// routeLabel is Kong's route label: the name, else the id.
func routeLabel(r *entity.Route) string {
	switch {
	case r == nil:
		return ""
	case r.Name != nil:
		return *r.Name
	}
	return r.ID
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
