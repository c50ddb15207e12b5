package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// testMetrics serves a registry with one counter, as a node's would.
var testMetrics = func() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "admin_test_total", Help: "A test counter."}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}()

// TestMetricsEndpoint: Options.Metrics is served at GET /metrics from the
// endpoint table (so OPTIONS and the OpenAPI document know it), and the
// endpoint is absent without it.
func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t)
	resp, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "admin_test_total 0") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if code, _ := e.do(http.MethodPost, "/metrics", "", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", code)
	}
	paths := fetchSpec(t, e)["paths"].(map[string]any)
	if _, ok := paths["/metrics"].(map[string]any)["get"]; !ok {
		t.Error("GET /metrics is not in the OpenAPI document")
	}

	bare := httptest.NewServer(New(Options{Store: newStore(t)}))
	defer bare.Close()
	resp, err = bare.Client().Get(bare.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without Options.Metrics: %d, want 404", resp.StatusCode)
	}
}

// TestTraced: each Admin API request is a server span that continues the
// caller's W3C trace, with its method, path and status, an error for a
// 5xx; /metrics scrapes make no span.
func TestTraced(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(Traced(tp, "sluice.admin", mux))
	defer srv.Close()

	parentCtx, parent := tp.Tracer("client").Start(t.Context(), "client")
	for _, path := range []string{"/ok", "/fail", "/metrics"} {
		req, _ := http.NewRequestWithContext(parentCtx, http.MethodPost, srv.URL+path, nil)
		propagation.TraceContext{}.Inject(parentCtx, propagation.HeaderCarrier(req.Header))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	parent.End()

	var spans []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == "sluice.admin POST" {
			spans = append(spans, s)
		}
	}
	if len(spans) != 2 {
		t.Fatalf("%d sluice.admin spans, want 2 (no span for /metrics)", len(spans))
	}
	for i, want := range []struct {
		target string
		status int64
		code   codes.Code
	}{{"/ok", 200, codes.Unset}, {"/fail", 502, codes.Error}} {
		s := spans[i]
		if s.SpanKind() != trace.SpanKindServer || s.Parent().SpanID() != parent.SpanContext().SpanID() ||
			s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s: kind %v parent %v, want a server span continuing the caller's trace", want.target, s.SpanKind(), s.Parent())
		}
		attrs := map[string]any{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.AsInterface()
		}
		if attrs["http.method"] != "POST" || attrs["http.target"] != want.target || attrs["http.status_code"] != want.status {
			t.Errorf("%s: attributes %v", want.target, attrs)
		}
		if s.Status().Code != want.code {
			t.Errorf("%s: status %v, want %v", want.target, s.Status().Code, want.code)
		}
	}
	if h := Traced(nil, "x", mux); h != http.Handler(mux) {
		t.Error("Traced without a tracer provider wraps the handler")
	}
}
