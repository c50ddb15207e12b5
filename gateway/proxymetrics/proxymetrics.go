// Package proxymetrics counts the proxy's requests: an Observer, registered
// with the proxy through proxy.Options, owns the per-route families
// (sluice_http_requests_total, sluice_request_duration_seconds,
// sluice_upstream_duration_seconds), sluice_client_errors_total and, with
// Kong compat, the per-request families of Kong 3.x's prometheus plugin.
// Prune and Forget delete the series of routes and services that are gone.
package proxymetrics

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/proxy"
)

// Options configures an Observer.
type Options struct {
	// KongCompat also exports Kong's per-request families
	// (prometheus_kong_compat); see kong.go.
	KongCompat bool
}

// Observer is the proxy's metrics. It is safe for concurrent use.
type Observer struct {
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	upstream       *prometheus.HistogramVec
	clientErrors   *prometheus.CounterVec
	// kongFams are Kong's per-request families, registered on every
	// node: the prometheus plugin records in them (Export); kong is
	// kongFams with Kong compat, when every matched request is recorded,
	// and nil without.
	kongFams, kong *kongFamilies

	// pairs holds the instruments of each (service, route) label pair
	// seen. The set stays bounded by the routes configured, as Prune and
	// Forget delete the pairs that are gone.
	pairs sync.Map // Pair -> *pairMetrics
	// byRoute resolves a matched request to its pair's instruments by its
	// route's id, without building the labels: an entry is used when the
	// request carries the same route and service entities it was made
	// for (entities are immutable, so their labels are the same too).
	byRoute sync.Map // route id -> *resolved
	// mu serializes the creation of a pair's instruments with Forget, so
	// that Forget never deletes the series of instruments created while it
	// runs (which would leave them counting unexported).
	mu sync.Mutex
}

// Pair is the (service, route) label pair of a request.
type Pair struct{ Service, Route string }

// PairOf returns the labels of a request matched to route r of service s:
// Kong's, the service's name, else its host, and the route's name, else
// its id. Either is empty when nil; both for an unmatched request.
func PairOf(s *entity.Service, r *entity.Route) Pair {
	return Pair{Service: serviceLabel(s), Route: routeLabel(r)}
}

// New returns an Observer whose families are registered with reg.
func New(reg prometheus.Registerer, opts Options) *Observer {
	f := promauto.With(reg)
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &Observer{
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
		clientErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_client_errors_total",
			Help: "Requests refused or cut short because of the client: malformed framing, a timeout reading it, a body or head over the limits, a connection closed mid-body.",
		}, []string{"reason"}),
	}
	for _, r := range proxy.ClientErrorReasons {
		m.clientErrors.WithLabelValues(r) // every reason is exported from the start, at 0
	}
	m.kongFams = newKongFamilies(f)
	if opts.KongCompat {
		m.kong = m.kongFams
	}
	return m
}

// Observe implements proxy.Observer. Requests that matched no route are
// counted with empty service and route labels, which keeps the label set
// bounded by the configured routes.
func (m *Observer) Observe(o proxy.Observation) {
	if o.ClientError != "" {
		m.clientErrors.WithLabelValues(o.ClientError).Inc()
	}
	pm := m.resolve(o.Route, o.Service)
	status := o.Status
	if status <= 0 || status >= len(statusCodes) {
		status = 0
	}
	fromUpstream := o.Upstream > 0
	pm.counters(m, status, fromUpstream).inc()
	pm.seconds.Observe(o.Total.Seconds())
	if fromUpstream {
		pm.upstream.Observe(o.Upstream.Seconds())
	}
	if pm.kong != nil {
		pm.kong.observe(o)
	}
}

// Prune deletes the series of every pair that is not in live (Forget for
// each), so that a deleted or renamed route or service stops being
// exported; the empty pair of unmatched requests is always kept. It is
// meant to run after a full rebuild of the route table, off the request
// path.
//
// A request matched by the previous table and observed after Prune
// re-creates its pair's series; the next Prune deletes them again. An
// increment made through instruments that Prune has just deleted is lost,
// which only affects a route that no longer exists.
func (m *Observer) Prune(live map[Pair]bool) {
	m.pairs.Range(func(k, _ any) bool {
		if p := k.(Pair); p != (Pair{}) && !live[p] {
			m.Forget(p)
		}
		return true
	})
}

// Forget deletes the series of one pair, for a route deleted or renamed
// (or moved to a service of another name) by an incremental update of the
// route table. A request still in flight for it may re-create them, as
// with Prune.
func (m *Observer) Forget(p Pair) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.pairs.LoadAndDelete(p)
	if !ok {
		return
	}
	pm := v.(*pairMetrics)
	pm.mu.Lock()
	pm.dead.Store(true)
	ids := pm.ids
	pm.mu.Unlock()
	for id := range ids {
		if r, ok := m.byRoute.Load(id); ok && r.(*resolved).pm == pm {
			m.byRoute.CompareAndDelete(id, r)
		}
	}
	labels := prometheus.Labels{"service": p.Service, "route": p.Route}
	for _, v := range m.perRoute() {
		v.DeletePartialMatch(labels)
	}
}

// resolved is what a route id resolved to, and for which entities.
type resolved struct {
	route   *entity.Route
	service *entity.Service
	pm      *pairMetrics
}

// resolve returns the instruments of a request matched to route r of
// service s (both nil when it matched none). A route seen before with the
// same entities costs one lookup by its id.
func (m *Observer) resolve(r *entity.Route, s *entity.Service) *pairMetrics {
	if r == nil {
		return m.pair(PairOf(s, nil))
	}
	if v, ok := m.byRoute.Load(r.ID); ok {
		if e := v.(*resolved); e.route == r && e.service == s && !e.pm.dead.Load() {
			return e.pm
		}
	}
	p := PairOf(s, r)
	for {
		pm := m.pair(p)
		pm.mu.Lock()
		if pm.dead.Load() { // forgotten meanwhile: the next pair call makes a new one
			pm.mu.Unlock()
			continue
		}
		pm.ids[r.ID] = struct{}{}
		m.byRoute.Store(r.ID, &resolved{route: r, service: s, pm: pm})
		pm.mu.Unlock()
		return pm
	}
}

// pair returns the instruments of p, creating them on first use.
func (m *Observer) pair(p Pair) *pairMetrics {
	if v, ok := m.pairs.Load(p); ok {
		return v.(*pairMetrics)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.pairs.Load(p); ok {
		return v.(*pairMetrics)
	}
	pm := &pairMetrics{
		pair:     p,
		seconds:  m.requestSeconds.WithLabelValues(p.Service, p.Route),
		upstream: m.upstream.WithLabelValues(p.Service, p.Route),
		ids:      make(map[string]struct{}),
	}
	if m.kong != nil && p.Route != "" {
		pm.kong = m.kong.route(p.Service, p.Route) // Kong counts matched requests only
	}
	m.pairs.Store(p, pm)
	return pm
}

// seriesDeleter is the part of a metric vector that Forget uses.
type seriesDeleter interface {
	DeletePartialMatch(prometheus.Labels) int
}

// perRoute lists the vectors labelled by service and route.
func (m *Observer) perRoute() []seriesDeleter {
	vs := []seriesDeleter{m.requests, m.requestSeconds, m.upstream}
	k := m.kongFams
	vs = append(vs, k.requests, k.bandwidth, k.kongLat, k.upstreamLat, k.reqLat)
	return vs
}

// pairMetrics holds one pair's instruments.
type pairMetrics struct {
	pair              Pair
	seconds, upstream prometheus.Observer
	kong              *kongRoute // nil without Kong compat, or unmatched
	// codes holds the request counters of each status code seen, as an
	// immutable slice replaced when a code is added: a route sees few
	// codes, and scanning them beats hashing.
	codes atomic.Pointer[[]codeCounters]
	// dead is set once Forget has deleted the pair.
	dead atomic.Bool

	// mu guards ids, dead's setting and the additions to codes. Forget
	// takes it inside Observer.mu; never take Observer.mu inside it.
	mu sync.Mutex
	// ids are the route ids resolved to this pair, whose byRoute entries
	// Forget deletes.
	ids map[string]struct{}
}

// codeCounters are the request counters of one status code and source:
// ours and, with Kong compat, Kong's (nil otherwise).
type codeCounters struct {
	key          int // status*2, +1 when the response came from upstream
	sluice, kong prometheus.Counter
}

func (cc *codeCounters) inc() {
	cc.sluice.Inc()
	if cc.kong != nil {
		cc.kong.Inc()
	}
}

// counters returns the request counters of a status code, with the Kong
// compat counter's source (service or kong) folded into the key.
func (pm *pairMetrics) counters(m *Observer, status int, fromUpstream bool) *codeCounters {
	k := status * 2
	if fromUpstream {
		k++
	}
	if cs := pm.codes.Load(); cs != nil {
		for i := range *cs {
			if (*cs)[i].key == k {
				return &(*cs)[i]
			}
		}
	}
	return pm.addCounters(m, k, status, fromUpstream)
}

// addCounters adds the counters of key k (see counters) to pm.codes. On
// a pair that Forget has deleted, it counts in the pair's new instruments
// instead, so that no series is created that Forget and Prune no longer
// know of.
func (pm *pairMetrics) addCounters(m *Observer, k, status int, fromUpstream bool) *codeCounters {
	if cc, ok := pm.addCountersLive(m, k, status, fromUpstream); ok {
		return cc
	}
	return m.pair(pm.pair).counters(m, status, fromUpstream)
}

// addCountersLive is addCounters on a pair not yet forgotten; it reports
// false on a forgotten one.
func (pm *pairMetrics) addCountersLive(m *Observer, k, status int, fromUpstream bool) (*codeCounters, bool) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.dead.Load() {
		return nil, false
	}
	var old []codeCounters
	if cs := pm.codes.Load(); cs != nil {
		old = *cs
	}
	for i := range old {
		if old[i].key == k {
			return &old[i], true
		}
	}
	code := "other"
	if status > 0 {
		code = statusCodes[status]
	}
	cc := codeCounters{key: k, sluice: m.requests.WithLabelValues(pm.pair.Service, pm.pair.Route, code)}
	if pm.kong != nil {
		cc.kong = pm.kong.requests(code, fromUpstream)
	}
	next := make([]codeCounters, len(old)+1)
	copy(next, old)
	next[len(old)] = cc
	pm.codes.Store(&next)
	return &next[len(old)], true
}

// statusCodes holds the label value of every HTTP status, so that the
// request path does not format one per request.
var statusCodes = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

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

var _ proxy.Observer = (*Observer)(nil)
