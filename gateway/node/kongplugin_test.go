package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-gw/sluice/cachebackends/freecache"
)

// TestPrometheusPluginFamilies: on a node with prometheus_kong_compat off,
// Kong's families appear on /metrics only for the routes the prometheus
// plugin applies to, only those its switches turn on, with the consumer
// label under per_consumer; changing the config changes what is recorded.
func TestPrometheusPluginFamilies(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer upstream.Close()
	backend, err := freecache.New(freecache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "freecache", backend)
	defer func() { _ = n.Shutdown(t.Context()) }()
	admin := "http://" + n.Addr("admin")
	call := func(method, path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
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
	proxy := func(path string, header ...string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+n.Addr("proxy")+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	scrape := func() map[string]*dto.MetricFamily {
		t.Helper()
		resp, err := http.Get(admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fams
	}
	kongFamilies := func(fams map[string]*dto.MetricFamily) []string {
		var out []string
		for name := range fams {
			if strings.HasPrefix(name, "kong_") {
				out = append(out, name)
			}
		}
		return out
	}

	call("POST", "/services", `{"name":"svc","url":"`+upstream.URL+`"}`, 201)
	call("POST", "/services/svc/routes", `{"name":"measured","paths":["/m"]}`, 201)
	call("POST", "/services/svc/routes", `{"name":"plain","paths":["/p"]}`, 201)
	call("POST", "/consumers", `{"username":"alice"}`, 201)
	call("POST", "/consumers/alice/key-auth", `{"key":"k-alice"}`, 201)
	call("POST", "/routes/measured/plugins", `{"name":"key-auth"}`, 201)
	proxy("/p")
	if got := kongFamilies(scrape()); len(got) != 0 {
		t.Fatalf("without the plugin /metrics has %v", got)
	}

	call("POST", "/routes/measured/plugins", `{"id":"7d1f1c5e-0c56-4a8e-a7b2-9a4f2b1c0d01","name":"prometheus",`+
		`"config":{"per_consumer":true,"status_code_metrics":true,"latency_metrics":true}}`, 201)
	proxy("/m", "apikey", "k-alice")
	proxy("/p")
	fams := scrape()
	reqs := fams["kong_http_requests_total"]
	if reqs == nil || len(reqs.GetMetric()) != 1 {
		t.Fatalf("kong_http_requests_total = %v, want one series", reqs)
	}
	l := labelsOf(reqs.GetMetric()[0])
	if l["route"] != "measured" || l["service"] != "svc" || l["consumer"] != "alice" || l["code"] != "200" || l["source"] != "service" {
		t.Errorf("kong_http_requests_total labels = %v", l)
	}
	for _, name := range []string{"kong_kong_latency_ms", "kong_upstream_latency_ms", "kong_request_latency_ms"} {
		if mf := fams[name]; mf == nil || mf.GetMetric()[0].GetHistogram().GetSampleCount() != 1 {
			t.Errorf("%s = %v, want one observation", name, mf)
		}
	}
	if fams["kong_bandwidth_bytes"] != nil {
		t.Error("kong_bandwidth_bytes exported with bandwidth_metrics off")
	}

	// Switches changed: bandwidth on, status codes and latencies off.
	call("PATCH", "/plugins/7d1f1c5e-0c56-4a8e-a7b2-9a4f2b1c0d01",
		`{"config":{"per_consumer":false,"status_code_metrics":false,"latency_metrics":false,"bandwidth_metrics":true}}`, 200)
	proxy("/m", "apikey", "k-alice")
	fams = scrape()
	bw := fams["kong_bandwidth_bytes"]
	if bw == nil || len(bw.GetMetric()) != 2 {
		t.Fatalf("kong_bandwidth_bytes = %v, want ingress and egress", bw)
	}
	for _, m := range bw.GetMetric() {
		if l := labelsOf(m); l["consumer"] != "" || l["route"] != "measured" {
			t.Errorf("kong_bandwidth_bytes labels = %v", l)
		}
		if l := labelsOf(m); l["direction"] == "egress" && m.GetCounter().GetValue() != 2 {
			t.Errorf("egress = %v, want 2 bytes", m.GetCounter().GetValue())
		}
	}
	if v := fams["kong_http_requests_total"].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Errorf("kong_http_requests_total moved to %v with status_code_metrics off", v)
	}

	// Deleting the route drops its series: the families disappear.
	call("DELETE", "/routes/measured", "", 204)
	deadline := time.Now().Add(5 * time.Second)
	for len(kongFamilies(scrape())) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the route /metrics still has %v", kongFamilies(scrape()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// labelsOf returns a series' labels by name.
func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string)
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}
