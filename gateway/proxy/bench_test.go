package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	"github.com/sluice-gw/sluice/gateway/plugins/ratelimiting"
)

// benchUpstream answers a small JSON body, like perf-scripts/upstream.
func benchUpstream(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"n":12345}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// discard is a minimal ResponseWriter so that the benchmark measures the
// proxy (router, plugins, upstream round trip), not a client.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func benchProxy(b *testing.B, p *Proxy, header http.Header, want int) {
	b.ReportAllocs()
	// The upstream runs in this process, so cpu-ns/op is proxy plus
	// upstream plus request building: compare it before/after, not with
	// the load test's proxy-only CPU per request.
	defer procstat.ReportCPU(b, procstat.Self())
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "http://gw.test/api/items?x=1", nil)
			for k, v := range header {
				req.Header[k] = v
			}
			clear(w.h)
			p.ServeHTTP(w, req)
			if w.h.Get("X-Kong-Upstream-Latency") == "" && want == 200 {
				b.Fatal("request was not proxied")
			}
		}
	})
}

func BenchmarkProxyCachedRoute(b *testing.B) {
	up := benchUpstream(b)
	p, _ := gateway(b, Options{}, route("r", []string{"/api"}, true, serviceFor(b, up.URL)))
	benchProxy(b, p, nil, 200)
}

func BenchmarkKeyAuthCached(b *testing.B) {
	up := benchUpstream(b)
	p, _ := gateway(b, Options{}, route("r", []string{"/api"}, true, serviceFor(b, up.URL)))
	reg := plugins.NewRegistry(keyauth.New(testCredentials()))
	set, err := plugins.NewSet(reg, []*entity.Plugin{pluginEntity("1", "key-auth", "", "", `{}`)})
	if err != nil {
		b.Fatal(err)
	}
	p.SetPlugins(set)
	benchProxy(b, p, http.Header{"Apikey": {"k1"}}, 200)
}

// BenchmarkKeyAuthRateLimitMetrics is the brief's target configuration:
// key-auth + rate-limiting (local) on the route and an OnResponse hook
// shaped like gateway/node's (a CounterVec and two HistogramVecs looked up
// with WithLabelValues on every request).
func BenchmarkKeyAuthRateLimitMetrics(b *testing.B) {
	up := benchUpstream(b)
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total"}, []string{"service", "route", "code"})
	total := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "request_seconds"}, []string{"service", "route"})
	upstream := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "upstream_seconds"}, []string{"service", "route"})
	reg.MustRegister(requests, total, upstream)
	observe := func(o Observation) {
		requests.WithLabelValues(o.Service.Host, o.Route.ID, "200").Inc()
		total.WithLabelValues(o.Service.Host, o.Route.ID).Observe(o.Total.Seconds())
		upstream.WithLabelValues(o.Service.Host, o.Route.ID).Observe(o.Upstream.Seconds())
	}
	p, _ := gateway(b, Options{OnResponse: observe}, route("r", []string{"/api"}, true, serviceFor(b, up.URL)))
	set, err := plugins.NewSet(plugins.NewRegistry(keyauth.New(testCredentials()), ratelimiting.New()), []*entity.Plugin{
		pluginEntity("1", "key-auth", "r", "", `{}`),
		pluginEntity("2", "rate-limiting", "r", "", `{"second":1000000000,"hour":1000000000000}`),
	})
	if err != nil {
		b.Fatal(err)
	}
	p.SetPlugins(set)
	benchProxy(b, p, http.Header{"Apikey": {"k1"}}, 200)
}
