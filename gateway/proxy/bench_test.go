package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
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
