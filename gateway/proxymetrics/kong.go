package proxymetrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sluice-gw/sluice/gateway/proxy"
)

// kongFamilies are the per-request families of Kong 3.x's prometheus
// plugin, with Kong's names, labels and buckets (prometheus_kong_compat =
// on), so that Kong's dashboards and alerts keep working. What each family
// measures here is listed in the README's Metrics section. Kong's
// node-level families are read at scrape time by gateway/node.
type kongFamilies struct {
	requests, bandwidth          *prometheus.CounterVec
	kongLat, upstreamLat, reqLat *prometheus.HistogramVec
}

// kongWorkspace is the workspace label: Sluice has one, Kong's default.
const kongWorkspace = "default"

var (
	// kongLatencyBuckets are kong_kong_latency_ms' buckets (Kong HEAD).
	kongLatencyBuckets = []float64{1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000}
	// kongUpstreamBuckets are kong_upstream_latency_ms' and
	// kong_request_latency_ms' buckets.
	kongUpstreamBuckets = []float64{25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000}
)

func newKongFamilies(f promauto.Factory) *kongFamilies {
	lat := []string{"service", "route", "workspace"}
	return &kongFamilies{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kong_http_requests_total", Help: "Kong compat: HTTP status codes per consumer/service/route in Kong",
		}, []string{"service", "route", "code", "source", "workspace", "consumer"}),
		bandwidth: f.NewCounterVec(prometheus.CounterOpts{
			Name: "kong_bandwidth_bytes",
			Help: "Kong compat: request (ingress) and response (egress) body bytes per service and route",
		}, []string{"service", "route", "direction", "workspace", "consumer"}),
		kongLat: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kong_kong_latency_ms", Help: "Kong compat: latency added by the gateway (ms)", Buckets: kongLatencyBuckets,
		}, lat),
		upstreamLat: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kong_upstream_latency_ms", Help: "Kong compat: latency added by the upstream (ms)", Buckets: kongUpstreamBuckets,
		}, lat),
		reqLat: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kong_request_latency_ms", Help: "Kong compat: total latency of a request (ms)", Buckets: kongUpstreamBuckets,
		}, lat),
	}
}

// kongRoute holds one (service, route)'s Kong instruments.
type kongRoute struct {
	k                            *kongFamilies
	service, route               string
	kongLat, upstreamLat, reqLat prometheus.Observer
	ingress, egress              prometheus.Counter
}

func (k *kongFamilies) route(service, route string) *kongRoute {
	return &kongRoute{k: k, service: service, route: route,
		kongLat:     k.kongLat.WithLabelValues(service, route, kongWorkspace),
		upstreamLat: k.upstreamLat.WithLabelValues(service, route, kongWorkspace),
		reqLat:      k.reqLat.WithLabelValues(service, route, kongWorkspace),
		ingress:     k.bandwidth.WithLabelValues(service, route, "ingress", kongWorkspace, ""),
		egress:      k.bandwidth.WithLabelValues(service, route, "egress", kongWorkspace, ""),
	}
}

// requests returns kong_http_requests_total's child for a code. Kong's
// source is "service" when the response came from the upstream, else
// "kong"; consumer stays empty as with Kong's per_consumer = false.
func (kr *kongRoute) requests(code string, fromUpstream bool) prometheus.Counter {
	source := "kong"
	if fromUpstream {
		source = "service"
	}
	return kr.k.requests.WithLabelValues(kr.service, kr.route, code, source, kongWorkspace, "")
}

// observe records the latencies of a request that matched a route.
func (kr *kongRoute) observe(o proxy.Observation) {
	kr.kongLat.Observe(ms(o.Proxy))
	kr.reqLat.Observe(ms(o.Total))
	if o.Upstream > 0 {
		kr.upstreamLat.Observe(ms(o.Upstream))
	}
	kr.ingress.Add(float64(o.RequestBytes))
	kr.egress.Add(float64(o.ResponseBytes))
}

func ms[D ~int64](d D) float64 { return float64(d) / 1e6 }
