package proxymetrics

import (
	"fmt"
	"sort"
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

// series lists the "service/route" pairs of a family's series, sorted,
// with their count (one entry per series).
func series(t *testing.T, reg *prometheus.Registry, family string) []string {
	t.Helper()
	var out []string
	for _, m := range gather(t, reg)[family].GetMetric() {
		l := labelsOf(m)
		s := l["service"] + "/" + l["route"]
		if c, ok := l["code"]; ok {
			s += "/" + c
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestKongCompatRequestFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{KongCompat: true})
	m.Observe(proxy.Observation{Service: testService, Route: testRoute, Status: 200,
		Proxy: 3 * time.Millisecond, Upstream: 40 * time.Millisecond, Total: 45 * time.Millisecond,
		RequestBytes: 10, ResponseBytes: 100})
	m.Observe(proxy.Observation{Service: testService, Route: testRoute, Status: 401,
		Proxy: time.Millisecond, Total: time.Millisecond, ResponseBytes: 50})
	m.Observe(proxy.Observation{Status: 404, Proxy: time.Millisecond, Total: time.Millisecond, ResponseBytes: 49})

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
	m := New(reg, Options{})
	m.Observe(proxy.Observation{Service: testService, Route: testRoute, Status: 200, Total: time.Millisecond})
	for name := range gather(t, reg) {
		if strings.HasPrefix(name, "kong_") {
			t.Errorf("%s exported with prometheus_kong_compat off", name)
		}
	}
}

// TestPerRouteSeries: each (service, route) pair and status code gets its
// own series, with Kong's labels (service name else host, route name else
// id), and requests of one route add up in one series.
func TestPerRouteSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{})
	unnamed := &entity.Service{ID: "s2", Host: "billing.internal"}
	anon := &entity.Route{ID: "r2"}
	for range 3 {
		m.Observe(proxy.Observation{Service: testService, Route: testRoute, Status: 200, Upstream: time.Millisecond})
	}
	m.Observe(proxy.Observation{Service: testService, Route: testRoute, Status: 503})
	m.Observe(proxy.Observation{Service: unnamed, Route: anon, Status: 200, Upstream: time.Millisecond})
	m.Observe(proxy.Observation{Status: 404})
	m.Observe(proxy.Observation{Status: 999}) // out of range: "other"

	want := []string{"/", "billing.internal/r2", "orders/orders-route"}
	if got := series(t, reg, "sluice_request_duration_seconds"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sluice_request_duration_seconds series = %v, want %v", got, want)
	}
	counts := map[string]float64{}
	for _, mt := range gather(t, reg)["sluice_http_requests_total"].GetMetric() {
		l := labelsOf(mt)
		counts[l["service"]+"/"+l["route"]+"/"+l["code"]] = mt.GetCounter().GetValue()
	}
	wantCounts := map[string]float64{"orders/orders-route/200": 3, "orders/orders-route/503": 1,
		"billing.internal/r2/200": 1, "//404": 1, "//other": 1}
	if fmt.Sprint(counts) != fmt.Sprint(wantCounts) {
		t.Errorf("sluice_http_requests_total = %v, want %v", counts, wantCounts)
	}
	if got := series(t, reg, "sluice_upstream_duration_seconds"); len(got) != 3 {
		t.Errorf("sluice_upstream_duration_seconds series = %v, want one per pair", got)
	}
}

// TestRenamedServiceResolvesToNewPair: a route whose service was renamed
// keeps its route entity (unchanged records are reused by the snapshot)
// but comes with a new service entity: its requests are counted under the
// new name.
func TestRenamedServiceResolvesToNewPair(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{})
	m.Observe(proxy.Observation{Service: testService, Route: testRoute, Status: 200})
	renamed := &entity.Service{ID: "s1", Name: ptr("purchases"), Host: "orders.internal"}
	m.Observe(proxy.Observation{Service: renamed, Route: testRoute, Status: 200})
	m.Observe(proxy.Observation{Service: renamed, Route: testRoute, Status: 200})
	want := []string{"orders/orders-route/200", "purchases/orders-route/200"}
	if got := series(t, reg, "sluice_http_requests_total"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("series = %v, want %v", got, want)
	}
	for _, mt := range gather(t, reg)["sluice_http_requests_total"].GetMetric() {
		if l := labelsOf(mt); l["service"] == "purchases" && mt.GetCounter().GetValue() != 2 {
			t.Errorf("purchases/orders-route = %v, want 2", mt.GetCounter().GetValue())
		}
	}
}

// observeAll sends one 200 from upstream for each route of svc, with Kong
// compat families fed too.
func observeAll(m *Observer, svc *entity.Service, routes ...*entity.Route) {
	for _, r := range routes {
		m.Observe(proxy.Observation{Service: svc, Route: r, Status: 200, Upstream: time.Millisecond, Total: time.Millisecond})
	}
}

// perRouteFamilies are the families whose series Prune and Forget delete.
var perRouteFamilies = []string{"sluice_http_requests_total", "sluice_request_duration_seconds",
	"sluice_upstream_duration_seconds", "kong_http_requests_total", "kong_bandwidth_bytes",
	"kong_kong_latency_ms", "kong_upstream_latency_ms", "kong_request_latency_ms"}

// checkPairs checks that every per-route family has series for exactly
// the pairs in want (service/route, sorted), the unmatched pair aside.
func checkPairs(t *testing.T, reg *prometheus.Registry, want ...string) {
	t.Helper()
	for _, fam := range perRouteFamilies {
		seen := map[string]bool{}
		for _, mt := range gather(t, reg)[fam].GetMetric() {
			if l := labelsOf(mt); l["route"] != "" {
				seen[l["service"]+"/"+l["route"]] = true
			}
		}
		var got []string
		for p := range seen {
			got = append(got, p)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s pairs = %v, want %v", fam, got, want)
		}
	}
}

// TestForgetDeletesOnePair: Forget deletes every series of one pair, in
// every per-route family, and nothing else; a request of that pair
// afterwards starts it again from zero.
func TestForgetDeletesOnePair(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{KongCompat: true})
	a, b := &entity.Route{ID: "ra", Name: ptr("a")}, &entity.Route{ID: "rb", Name: ptr("b")}
	other := &entity.Service{ID: "s9", Name: ptr("other")}
	observeAll(m, testService, a, b)
	observeAll(m, other, a) // the same route name under another service
	m.Observe(proxy.Observation{Status: 404})
	checkPairs(t, reg, "orders/a", "orders/b", "other/a")

	m.Forget(Pair{Service: "orders", Route: "a"})
	checkPairs(t, reg, "orders/b", "other/a")
	if got := series(t, reg, "sluice_http_requests_total"); fmt.Sprint(got) != "[//404 orders/b/200 other/a/200]" {
		t.Errorf("sluice_http_requests_total = %v: the unmatched series must stay", got)
	}
	m.Forget(Pair{Service: "nobody", Route: "nothing"}) // unknown: no-op
	checkPairs(t, reg, "orders/b", "other/a")

	observeAll(m, testService, a) // the same entities as before Forget
	checkPairs(t, reg, "orders/a", "orders/b", "other/a")
	for _, mt := range gather(t, reg)["sluice_http_requests_total"].GetMetric() {
		if l := labelsOf(mt); l["service"] == "orders" && l["route"] == "a" && mt.GetCounter().GetValue() != 1 {
			t.Errorf("orders/a after Forget and one request = %v, want 1", mt.GetCounter().GetValue())
		}
	}
}

// TestPruneKeepsLivePairs: Prune deletes the pairs not in live (a deleted
// route, a renamed one's old name, a renamed service's old name) and keeps
// the live ones and the unmatched pair.
func TestPruneKeepsLivePairs(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{KongCompat: true})
	a, b, c := &entity.Route{ID: "ra", Name: ptr("a")}, &entity.Route{ID: "rb", Name: ptr("b")}, &entity.Route{ID: "rc"}
	observeAll(m, testService, a, b, c)
	m.Observe(proxy.Observation{Status: 404})
	checkPairs(t, reg, "orders/a", "orders/b", "orders/rc")

	// b deleted, c renamed to "c", the service renamed to "shop".
	shop := &entity.Service{ID: "s1", Name: ptr("shop")}
	c2 := &entity.Route{ID: "rc", Name: ptr("c")}
	m.Prune(map[Pair]bool{PairOf(shop, a): true, PairOf(shop, c2): true})
	checkPairs(t, reg)
	if got := series(t, reg, "sluice_http_requests_total"); fmt.Sprint(got) != "[//404]" {
		t.Errorf("after Prune sluice_http_requests_total = %v, want only the unmatched series", got)
	}
	observeAll(m, shop, a, c2)
	checkPairs(t, reg, "shop/a", "shop/c")
	m.Prune(map[Pair]bool{PairOf(shop, a): true, PairOf(shop, c2): true})
	checkPairs(t, reg, "shop/a", "shop/c")
}

// TestConcurrentForget: requests of a route observed while its pair is
// forgotten again and again never leave the route resolved to forgotten
// instruments: once the forgetting stops, the next request is counted.
func TestConcurrentForget(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			observeAll(m, testService, testRoute)
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			m.Forget(PairOf(testService, testRoute))
			continue
		}
		break
	}
	m.Forget(PairOf(testService, testRoute))
	observeAll(m, testService, testRoute)
	mfs := gather(t, reg)["sluice_http_requests_total"].GetMetric()
	if len(mfs) != 1 || mfs[0].GetCounter().GetValue() != 1 {
		t.Fatalf("after the last Forget and one request: %v, want one series at 1", mfs)
	}
}

// BenchmarkObserve measures the proxy's Observer on one route.
func BenchmarkObserve(b *testing.B) {
	o := proxy.Observation{Service: testService, Route: testRoute, Status: 200,
		Proxy: time.Millisecond, Upstream: 5 * time.Millisecond, Total: 7 * time.Millisecond}
	for _, compat := range []bool{false, true} {
		name := "sluice"
		if compat {
			name = "kong_compat"
		}
		b.Run(name, func(b *testing.B) {
			m := New(prometheus.NewRegistry(), Options{KongCompat: compat})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.Observe(o)
				}
			})
		})
	}
}

// TestStragglerAfterForget: a request that resolved its pair before Forget
// and counts a new status code after it leaves no series that a later
// Forget cannot delete.
func TestStragglerAfterForget(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{KongCompat: true})
	observeAll(m, testService, testRoute)
	p := PairOf(testService, testRoute)
	stale := m.resolve(testRoute, testService) // held by a request in flight
	m.Forget(p)
	checkPairs(t, reg)
	stale.counters(m, 503, true).inc() // that request ends with a new code
	if got := series(t, reg, "sluice_http_requests_total"); fmt.Sprint(got) != "[orders/orders-route/503]" {
		t.Errorf("after the straggler: %v, want its 503 counted", got)
	}
	m.Forget(p)
	if got := series(t, reg, "sluice_http_requests_total"); len(got) != 0 {
		t.Errorf("after a second Forget: %v, want no series", got)
	}
	if got := series(t, reg, "kong_http_requests_total"); len(got) != 0 {
		t.Errorf("kong_http_requests_total after a second Forget: %v, want no series", got)
	}
}
