package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/httplog"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttransformer"
)

func benchWithPlugin(b *testing.B, p plugins.Plugin, config string) {
	up := benchUpstream(b)
	px, _ := gateway(b, Options{}, route("r", []string{"/api"}, true, serviceFor(b, up.URL)))
	set, err := plugins.NewSet(plugins.NewRegistry(p), []*entity.Plugin{pluginEntity("1", p.Name(), "r", "", config)})
	if err != nil {
		b.Fatal(err)
	}
	px.SetPlugins(set)
	benchProxy(b, px, map[string]string{"X-Client": "bench"}, 200)
}

// BenchmarkRequestTransformer: headers and query string edited, with a
// template, on every request.
func BenchmarkRequestTransformer(b *testing.B) {
	benchWithPlugin(b, requesttransformer.New(), `{"remove":{"headers":["x-secret"]},
		"add":{"headers":["x-added:1","x-from:$(headers.x_client)"],"querystring":["v:2"]}}`)
}

// BenchmarkHTTPLog: each request serialized and queued; a local log
// server takes batches of 100.
func BenchmarkHTTPLog(b *testing.B) {
	logs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	b.Cleanup(logs.Close)
	p := httplog.New(httplog.Options{})
	b.Cleanup(func() { _ = p.Close() })
	benchWithPlugin(b, p, `{"http_endpoint":"`+logs.URL+`","queue":{"max_batch_size":100,"max_coalescing_delay":0.1,"max_entries":100000}}`)
}
