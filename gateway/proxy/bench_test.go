package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/valyala/fasthttp"

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

// benchProxy runs the proxy's handler on in-process requests, so that the
// benchmark measures the proxy (router, plugins, upstream round trip), not
// a client or the server's socket reads.
func benchProxy(b *testing.B, p *Proxy, header map[string]string, want int) {
	b.ReportAllocs()
	// The upstream runs in this process, so cpu-ns/op is proxy plus
	// upstream plus request building: compare it before/after, not with
	// the load test's proxy-only CPU per request.
	defer procstat.ReportCPU(b, procstat.Self())
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			req.Reset()
			req.SetRequestURI("/api/items?x=1")
			req.Header.SetHost("gw.test")
			for k, v := range header {
				req.Header.Set(k, v)
			}
			ctx.Init(&req, nil, nil)
			p.serve(&ctx)
			if ctx.Response.StatusCode() != want {
				b.Fatalf("status %d, want %d", ctx.Response.StatusCode(), want)
			}
			_ = ctx.Response.Body() // reads the streamed body, which frees the connection
			ctx.Response.Reset()
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
	benchProxy(b, p, map[string]string{"Apikey": "k1"}, 200)
}

// BenchmarkKeyAuthRateLimitMetrics is the brief's target configuration:
// key-auth + rate-limiting (local) on the route and an Observer
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
	p, _ := gateway(b, Options{Observer: ObserverFunc(observe)}, route("r", []string{"/api"}, true, serviceFor(b, up.URL)))
	set, err := plugins.NewSet(plugins.NewRegistry(keyauth.New(testCredentials()), ratelimiting.New()), []*entity.Plugin{
		pluginEntity("1", "key-auth", "r", "", `{}`),
		pluginEntity("2", "rate-limiting", "r", "", `{"second":1000000000,"hour":1000000000000}`),
	})
	if err != nil {
		b.Fatal(err)
	}
	p.SetPlugins(set)
	benchProxy(b, p, map[string]string{"Apikey": "k1"}, 200)
}
