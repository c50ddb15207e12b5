package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	"github.com/sluice-gw/sluice/gateway/plugins/ratelimiting"
)

// tracedCredentials records, like the node's cache adapter does, the
// cache result of each lookup on the span found in the lookup's context.
type tracedCredentials struct{ memCredentials }

func (tc tracedCredentials) Credential(ctx context.Context, key string) (*entity.KeyAuthCredential, error) {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("sluice.cache.keyauth_credentials", "hit"))
	return tc.memCredentials.Credential(ctx, key)
}

// traceparentUpstream is a real upstream that records the traceparent
// header of each request.
func traceparentUpstream(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Traceparent"))
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func tracedGateway(t *testing.T, upURL string) (*tracetest.SpanRecorder, *listening) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	svc := serviceFor(t, upURL)
	p, gw := gateway(t, Options{TracerProvider: tp}, route("auth", []string{"/auth"}, true, svc))
	reg := plugins.NewRegistry(keyauth.New(tracedCredentials{testCredentials()}), ratelimiting.New())
	set, err := plugins.NewSet(reg, []*entity.Plugin{
		pluginEntity("1", "key-auth", "auth", "", `{}`),
		pluginEntity("2", "rate-limiting", "auth", "", `{"minute":100}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.SetPlugins(set)
	return sr, gw
}

func spansByName(spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	m := make(map[string]sdktrace.ReadOnlySpan)
	for _, s := range spans {
		m[s.Name()] = s
	}
	return m
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestSpanTreeOfProxiedRequest checks the span tree of one request that
// continues a client's trace: the server span, the router and each plugin
// under it, and one client span per upstream try whose context reaches the
// upstream as a W3C traceparent.
func TestSpanTreeOfProxiedRequest(t *testing.T) {
	up, seen := traceparentUpstream(t)
	sr, gw := tracedGateway(t, up.URL)

	clientTrace, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	clientSpan, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/auth/x?q=1", nil)
	req.Header.Set("Traceparent", "00-"+clientTrace.String()+"-"+clientSpan.String()+"-01")
	req.Header.Set("Apikey", "k1")
	resp, body := get(t, req)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("GET /auth/x = %d %q, want 200 from the upstream", resp.StatusCode, body)
	}

	spans := sr.Ended()
	byName := spansByName(spans)
	server := byName["sluice"]
	if server == nil {
		t.Fatalf("no server span; got %v", names(spans))
	}
	if server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID() != clientSpan ||
		server.SpanContext().TraceID() != clientTrace || !server.Parent().IsRemote() {
		t.Errorf("server span kind=%v parent=%v: want SERVER continuing the client's trace", server.SpanKind(), server.Parent())
	}
	for key, want := range map[string]attribute.Value{
		"http.method": attribute.StringValue("GET"), "http.url": attribute.StringValue("/auth/x"),
		"http.status_code": attribute.IntValue(200),
	} {
		if got, ok := attr(server, key); !ok || got != want {
			t.Errorf("server span %s = %v, want %v", key, got.String(), want.String())
		}
	}

	for _, name := range []string{"sluice.router", "sluice.access.plugin.key-auth", "sluice.access.plugin.rate-limiting", "sluice.balancer"} {
		s := byName[name]
		if s == nil {
			t.Errorf("no %s span; got %v", name, names(spans))
			continue
		}
		if s.Parent().SpanID() != server.SpanContext().SpanID() || s.SpanContext().TraceID() != clientTrace {
			t.Errorf("%s is not a child of the server span in the client's trace", name)
		}
	}
	if v, ok := attr(byName["sluice.access.plugin.key-auth"], "sluice.cache.keyauth_credentials"); !ok || v.AsString() != "hit" {
		t.Errorf("key-auth span lacks the credential lookup's cache result (got %v): the plugin did not run in its span's context", v.String())
	}
	if _, ok := attr(server, "sluice.cache.keyauth_credentials"); ok {
		t.Error("the credential lookup's attribute landed on the server span, not the plugin's")
	}

	bal := byName["sluice.balancer"]
	if bal == nil {
		return
	}
	if bal.SpanKind() != trace.SpanKindClient {
		t.Errorf("balancer span kind = %v, want CLIENT", bal.SpanKind())
	}
	if v, _ := attr(bal, "try_count"); v.AsInt64() != 1 {
		t.Errorf("balancer try_count = %v, want 1", v.String())
	}
	if v, _ := attr(bal, "http.status_code"); v.AsInt64() != 200 {
		t.Errorf("balancer http.status_code = %v, want 200", v.String())
	}
	got := seen()
	if len(got) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(got))
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": got[0]}))
	if sc.TraceID() != clientTrace || sc.SpanID() != bal.SpanContext().SpanID() {
		t.Errorf("upstream traceparent %q, want the balancer span %s of trace %s", got[0], bal.SpanContext().SpanID(), clientTrace)
	}
}

// TestSpanTreeOfRejectedRequest: a request key-auth rejects has no client
// span, and the server span carries the 401.
func TestSpanTreeOfRejectedRequest(t *testing.T) {
	up, seen := traceparentUpstream(t)
	sr, gw := tracedGateway(t, up.URL)
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/auth/x", nil)
	req.Header.Set("Apikey", "wrong")
	if resp, _ := get(t, req); resp.StatusCode != 401 {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	byName := spansByName(sr.Ended())
	if byName["sluice.balancer"] != nil || byName["sluice.access.plugin.rate-limiting"] != nil || len(seen()) != 0 {
		t.Errorf("a rejected request went on: spans %v", names(sr.Ended()))
	}
	server := byName["sluice"]
	if server == nil {
		t.Fatal("no server span")
	}
	if v, _ := attr(server, "http.status_code"); v.AsInt64() != 401 {
		t.Errorf("server span http.status_code = %v, want 401", v.String())
	}
	if server.Parent().IsValid() {
		t.Errorf("server span has parent %v without a client traceparent; want a new root", server.Parent())
	}
}

// TestUpstreamFailureSpan: each failed try is a client span with an error
// status.
func TestUpstreamFailureSpan(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	sr, gw := tracedGateway(t, url)
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/auth/x", nil)
	req.Header.Set("Apikey", "k1")
	if resp, _ := get(t, req); resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	bal := spansByName(sr.Ended())["sluice.balancer"]
	if bal == nil || bal.Status().Code.String() != "Error" || len(bal.Events()) == 0 {
		t.Fatalf("want an errored balancer span with the error recorded, got %v", bal)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
	}
	return out
}
