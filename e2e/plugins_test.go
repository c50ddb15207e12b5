package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/bench/harness"
)

// seen is what a recording server received.
type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// recorder is a real HTTP server that records every request and answers
// 200 "ok".
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		rec.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) all() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seen(nil), rec.reqs...)
}

// adminJSON sends a JSON Admin API request and fails t unless it answers
// want.
func adminJSON(t *testing.T, n *harness.Node, method, path, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(method, n.AdminURL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
}

// TestBundledPlugins runs request-transformer, http-log and prometheus on
// a real node: the service gets the transformed request, the log server
// the entries (the last ones sent when the node stops), /metrics Kong's
// families the prometheus plugin turns on.
func TestBundledPlugins(t *testing.T) {
	up, logs := newRecorder(t), newRecorder(t)
	c := startCluster(t, 1)
	a := c.Nodes[0]
	adminJSON(t, a, "POST", "/services", `{"name":"svc","url":"`+up.URL+`/base"}`, 201)
	adminJSON(t, a, "POST", "/services/svc/routes", `{"name":"rt","paths":["/rt"]}`, 201)
	adminJSON(t, a, "POST", "/routes/rt/plugins", `{"name":"request-transformer","config":{
		"remove":{"headers":["x-secret"],"body":["password"]},
		"add":{"headers":["x-added:$(headers.x_client)"],"querystring":["v:2"],"body":["source:gw"]},
		"replace":{"uri":"/replaced"}}}`, 201)
	adminJSON(t, a, "POST", "/routes/rt/plugins", `{"name":"http-log","config":{"http_endpoint":"`+logs.URL+`/in",
		"queue":{"max_batch_size":100,"max_coalescing_delay":30}}}`, 201)
	adminJSON(t, a, "POST", "/plugins", `{"name":"prometheus","config":{"status_code_metrics":true}}`, 201)

	req, _ := http.NewRequest("POST", a.ProxyURL+"/rt/x?q=1", strings.NewReader(`{"user":"bob","password":"s"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Secret", "s")
	req.Header.Set("X-Client", "cli")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("proxy answered %d", resp.StatusCode)
	}
	got := up.all()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests", len(got))
	}
	u := got[0]
	var body map[string]any
	_ = json.Unmarshal(u.body, &body)
	if u.path != "/replaced" || u.query != "q=1&v=2" || u.header.Get("X-Secret") != "" || u.header.Get("X-Added") != "cli" ||
		body["password"] != nil || body["user"] != "bob" || body["source"] != "gw" {
		t.Errorf("upstream got %s %s?%s headers %v body %s", u.method, u.path, u.query, u.header, u.body)
	}

	// /metrics: Kong's request counter for the route, no latency family
	// (latency_metrics off).
	resp, err = http.Get(a.StatusURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `kong_http_requests_total{code="200",consumer="",route="rt",service="svc",source="service",workspace="default"} 1`) {
		t.Errorf("/metrics lacks the route's kong_http_requests_total:\n%s", grep(string(metrics), "kong_"))
	}
	if strings.Contains(string(metrics), "kong_request_latency_ms") {
		t.Error("kong_request_latency_ms exported with latency_metrics off")
	}

	// The entry waits in the queue (coalescing delay 30 s): stopping the
	// node sends it.
	if n := len(logs.all()); n != 0 {
		t.Fatalf("log server got %d batches before the coalescing delay", n)
	}
	a.Stop()
	entries := logs.all()
	if len(entries) != 1 {
		t.Fatalf("log server got %d batches after the node stopped, want 1", len(entries))
	}
	var batch []map[string]any
	if err := json.Unmarshal(entries[0].body, &batch); err != nil || len(batch) != 1 {
		t.Fatalf("log batch %s: %v", entries[0].body, err)
	}
	e := batch[0]
	if e["upstream_uri"] != "/replaced?q=1&v=2" || e["route"].(map[string]any)["name"] != "rt" ||
		e["request"].(map[string]any)["method"] != "POST" || e["response"].(map[string]any)["status"] != 200.0 {
		t.Errorf("log entry %s", entries[0].body)
	}
}
