package proxy

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/gateway/router"
)

// TestRouteProtocols checks Kong's answers on the plain HTTP listener to a
// request whose route does not serve plain HTTP, and that such requests
// never reach the service.
func TestRouteProtocols(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(up.Close)
	svc := serviceFor(t, up.URL)
	withProtocols := func(id string, code int, protocols ...string) router.Target {
		tg := route(id, []string{"/" + id}, false, svc)
		tg.Route.Protocols, tg.Route.HTTPSRedirectStatusCode = protocols, code
		return tg
	}
	_, gw := gateway(t, Options{},
		withProtocols("both", 426, "http", "https"),
		withProtocols("plain", 426, "http"),
		withProtocols("tls", 426, "https"),
		withProtocols("moved", 308, "https"),
		withProtocols("grpc", 426, "grpc", "grpcs"),
		withProtocols("grpcs", 426, "grpcs"),
	)
	tests := []struct {
		path, contentType string
		want              int
		body, header, val string
		upstream          bool
	}{
		{path: "/both", want: 200, upstream: true},
		{path: "/plain", want: 200, upstream: true},
		{path: "/tls", want: 426, body: `{"message":"Please use HTTPS protocol"}`, header: "Upgrade", val: "TLS/1.2, HTTP/1.1"},
		{path: "/moved?a=1", want: 308, header: "Location", val: "https://gw.example/moved?a=1"},
		{path: "/grpc", want: 415, body: `{"message":"Non-gRPC request matched gRPC route"}`},
		{path: "/grpcs", contentType: "application/json", want: 415, body: `{"message":"Non-gRPC request matched gRPC route"}`},
		{path: "/grpc", contentType: "application/grpc", want: 200, upstream: true},
	}
	for _, tt := range tests {
		before := hits.Load()
		req, _ := http.NewRequest(http.MethodGet, gw.URL+tt.path, nil)
		req.Host = "gw.example:8000"
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirect following
		if err != nil {
			t.Fatal(err)
		}
		var body [256]byte
		n, _ := resp.Body.Read(body[:])
		resp.Body.Close()
		if resp.StatusCode != tt.want || (tt.body != "" && string(body[:n]) != tt.body+"\n" && string(body[:n]) != tt.body) {
			t.Errorf("%s (%s): %d %q, want %d %q", tt.path, tt.contentType, resp.StatusCode, body[:n], tt.want, tt.body)
		}
		if tt.header != "" && resp.Header.Get(tt.header) != tt.val {
			t.Errorf("%s: %s = %q, want %q", tt.path, tt.header, resp.Header.Get(tt.header), tt.val)
		}
		if got := hits.Load() > before; got != tt.upstream {
			t.Errorf("%s (%s): reached the service %v, want %v", tt.path, tt.contentType, got, tt.upstream)
		}
	}
}
