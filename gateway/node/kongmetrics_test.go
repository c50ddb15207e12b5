package node

import (
	"github.com/valyala/fasthttp"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/proxy"
)

func ptr[T any](v T) *T { return &v }

var (
	testService = &entity.Service{ID: "s1", Name: ptr("orders"), Host: "orders.internal"}
	testRoute   = &entity.Route{ID: "r1", Name: ptr("orders-route")}
)

// gather returns the families of reg by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string)
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func TestKongCompatRequestFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.kong = newKongMetrics(reg)
	m.observe(proxy.Observation{Service: testService, Route: testRoute, Status: 200,
		Proxy: 3 * time.Millisecond, Upstream: 40 * time.Millisecond, Total: 45 * time.Millisecond,
		RequestBytes: 10, ResponseBytes: 100})
	m.observe(proxy.Observation{Service: testService, Route: testRoute, Status: 401,
		Proxy: time.Millisecond, Total: time.Millisecond, ResponseBytes: 50})
	m.observe(proxy.Observation{Status: 404, Proxy: time.Millisecond, Total: time.Millisecond, ResponseBytes: 49})

	fams := gather(t, reg)
	reqs := fams["kong_http_requests_total"]
	if reqs == nil {
		t.Fatal("kong_http_requests_total is missing")
	}
	got := map[string]float64{}
	for _, mt := range reqs.GetMetric() {
		l := labelsOf(mt)
		if l["workspace"] != "default" || l["consumer"] != "" || l["service"] != "orders" || l["route"] != "orders-route" {
			t.Errorf("kong_http_requests_total labels = %v", l)
		}
		got[l["code"]+"/"+l["source"]] = mt.GetCounter().GetValue()
	}
	want := map[string]float64{"200/service": 1, "401/kong": 1}
	if len(got) != len(want) || got["200/service"] != 1 || got["401/kong"] != 1 {
		t.Errorf("kong_http_requests_total = %v, want %v (unmatched requests are not counted, as in Kong)", got, want)
	}
	if n := len(fams["sluice_http_requests_total"].GetMetric()); n != 3 {
		t.Errorf("sluice_http_requests_total has %d series, want 3 (the 404 included)", n)
	}

	for name, bounds := range map[string][]float64{
		"kong_kong_latency_ms": kongLatencyBuckets, "kong_upstream_latency_ms": kongUpstreamBuckets,
		"kong_request_latency_ms": kongUpstreamBuckets,
	} {
		mf := fams[name]
		if mf == nil || len(mf.GetMetric()) != 1 {
			t.Fatalf("%s: want one series, got %v", name, mf)
		}
		h := mf.GetMetric()[0].GetHistogram()
		if l := labelsOf(mf.GetMetric()[0]); len(l) != 3 || l["workspace"] != "default" {
			t.Errorf("%s labels = %v, want service, route, workspace", name, l)
		}
		if len(h.GetBucket()) != len(bounds) {
			t.Fatalf("%s has %d buckets, want Kong's %d", name, len(h.GetBucket()), len(bounds))
		}
		for i, b := range h.GetBucket() {
			if b.GetUpperBound() != bounds[i] {
				t.Errorf("%s bucket %d = %v, want %v", name, i, b.GetUpperBound(), bounds[i])
			}
		}
	}
	bw := map[string]float64{}
	for _, mt := range fams["kong_bandwidth_bytes"].GetMetric() {
		l := labelsOf(mt)
		if l["service"] != "orders" || l["route"] != "orders-route" || l["workspace"] != "default" {
			t.Errorf("kong_bandwidth_bytes labels = %v", l)
		}
		bw[l["direction"]] = mt.GetCounter().GetValue()
	}
	if bw["ingress"] != 10 || bw["egress"] != 150 || len(bw) != 2 {
		t.Errorf("kong_bandwidth_bytes = %v, want ingress 10 and egress 150 (matched requests only)", bw)
	}
	up := fams["kong_upstream_latency_ms"].GetMetric()[0].GetHistogram()
	if up.GetSampleCount() != 1 || up.GetSampleSum() != 40 {
		t.Errorf("kong_upstream_latency_ms count=%d sum=%v, want 1 and 40 (ms)", up.GetSampleCount(), up.GetSampleSum())
	}
	kl := fams["kong_kong_latency_ms"].GetMetric()[0].GetHistogram()
	if kl.GetSampleCount() != 2 || kl.GetSampleSum() != 4 {
		t.Errorf("kong_kong_latency_ms count=%d sum=%v, want 2 and 4 (ms)", kl.GetSampleCount(), kl.GetSampleSum())
	}
}

func TestNoKongFamiliesWithoutCompat(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.observe(proxy.Observation{Service: testService, Route: testRoute, Status: 200, Total: time.Millisecond})
	for name := range gather(t, reg) {
		if strings.HasPrefix(name, "kong_") {
			t.Errorf("%s exported with prometheus_kong_compat off", name)
		}
	}
}

// TestConnStatsOnRealServer drives a real fasthttp server (the proxy's)
// through the counting listener and checks the nginx-style connection
// states and byte counts.
func TestConnStatsOnRealServer(t *testing.T) {
	cs := &connStats{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			<-release
		}
		_, _ = ctx.WriteString("hello")
	}, ConnState: cs.connState}
	go func() { _ = srv.Serve(cs.listener(ln)) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	url := "http://" + ln.Addr().String()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	t.Cleanup(client.CloseIdleConnections)
	for range 3 {
		resp, err := client.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitUntil(t, func() bool { return cs.waiting.Load() == 1 })
	if a, r := cs.accepted.Load(), cs.requests.Load(); a != 1 || r != 3 {
		t.Errorf("accepted=%d requests=%d, want 1 keep-alive connection serving 3 requests", a, r)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		c2 := &http.Client{Transport: &http.Transport{}}
		if resp, err := c2.Get(url + "/slow"); err == nil {
			resp.Body.Close()
		}
		c2.CloseIdleConnections()
	}()
	waitUntil(t, func() bool { return cs.writing.Load() == 1 })
	close(release)
	<-done
	client.CloseIdleConnections()
	waitUntil(t, func() bool { return cs.reading.Load()+cs.writing.Load()+cs.waiting.Load() == 0 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkObserve measures the proxy's OnResponse hook on one route.
func BenchmarkObserve(b *testing.B) {
	o := proxy.Observation{Service: testService, Route: testRoute, Status: 200,
		Proxy: time.Millisecond, Upstream: 5 * time.Millisecond, Total: 7 * time.Millisecond}
	for _, compat := range []bool{false, true} {
		name := "sluice"
		if compat {
			name = "kong_compat"
		}
		b.Run(name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			m := newMetrics(reg)
			if compat {
				m.kong = newKongMetrics(reg)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.observe(o)
				}
			})
		})
	}
}
