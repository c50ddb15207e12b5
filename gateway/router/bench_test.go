package router

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/gateway/entity"
)

// table10k builds 10,000 routes in four groups of 2,500: exact host with
// prefix paths, prefix paths only, wildcard hosts, and methods plus headers;
// plus 20 regex routes. Paths share long prefixes so the tree has depth.
func table10k() []Target { return tableN(2500) }

// table100k is table10k's shape with 25,000 routes per group.
func table100k() []Target { return tableN(25_000) }

func tableN(group int) []Target {
	svc := &entity.Service{ID: "svc"}
	ts := make([]Target, 0, 4*group+20)
	add := func(r *entity.Route) { ts = append(ts, Target{Route: r, Service: svc}) }
	for i := range group {
		add(route(fmt.Sprintf("host-%d", i), created(int64(i)),
			hosts(fmt.Sprintf("svc%d.example.com", i)), paths(fmt.Sprintf("/api/v1/svc%d", i), "/health")))
		add(route(fmt.Sprintf("path-%d", i), created(int64(i)),
			paths(fmt.Sprintf("/services/team%d/svc%d", i%50, i))))
		add(route(fmt.Sprintf("wild-%d", i), created(int64(i)),
			hosts(fmt.Sprintf("*.tenant%d.example.net", i)), paths("/")))
		add(route(fmt.Sprintf("hdr-%d", i), created(int64(i)), methods("GET", "POST"),
			header("x-tenant", fmt.Sprintf("t%d", i)), paths(fmt.Sprintf("/h/%d", i))))
	}
	for i := range 20 {
		add(route(fmt.Sprintf("re-%d", i), created(int64(i)), paths(fmt.Sprintf(`~/re%d/items/\d+$`, i))))
	}
	return ts
}

var benchRequests = []struct {
	name               string
	method, host, path string
	header             http.Header
	want               string
}{
	{"exact_host_prefix", "GET", "svc1234.example.com", "/api/v1/svc1234/users/42", nil, "host-1234"},
	{"exact_host_with_port", "GET", "svc1234.example.com:8000", "/health", nil, "host-1234"},
	{"prefix_only", "GET", "unknown.example.org", "/services/team7/svc1207/orders/9", nil, "path-1207"},
	{"prefix_only_no_host", "GET", "", "/services/team7/svc1207", nil, "path-1207"},
	{"wildcard_host", "GET", "api.tenant99.example.net", "/x", nil, "wild-99"},
	{"method_header", "POST", "", "/h/777/x", http.Header{"X-Tenant": {"t777"}}, "hdr-777"},
	{"regex", "GET", "", "/re7/items/123", nil, "re-7"},
	{"miss", "GET", "nothing.example.org", "/nope/nothing", nil, ""},
	{"non_normal_path", "GET", "", "/services//team7/./svc1207/%41", nil, "path-1207"},
	{"uppercase_host", "GET", "SVC1234.example.com", "/api/v1/svc1234", nil, "host-1234"},
}

func TestMatch10k(t *testing.T) {
	r, err := New(table10k())
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 10_020 {
		t.Errorf("Len = %d, want 10020", r.Len())
	}
	for _, rq := range benchRequests {
		t.Run(rq.name, func(t *testing.T) {
			m, ok := r.Match(rq.method, rq.host, rq.path, rq.header)
			got := ""
			if ok {
				got = m.Route.ID
			}
			if got != rq.want {
				t.Errorf("Match = %q, want %q", got, rq.want)
			}
		})
	}
}

func TestMatchNoAlloc(t *testing.T) {
	r, err := New(table10k())
	if err != nil {
		t.Fatal(err)
	}
	for _, rq := range benchRequests {
		switch rq.name {
		case "regex", "non_normal_path", "uppercase_host":
			continue // documented to allocate
		}
		t.Run(rq.name, func(t *testing.T) {
			n := testing.AllocsPerRun(100, func() { r.Match(rq.method, rq.host, rq.path, rq.header) })
			if n != 0 {
				t.Errorf("Match allocates %v times, want 0", n)
			}
		})
	}
}

func BenchmarkMatch10k(b *testing.B) {
	r, err := New(table10k())
	if err != nil {
		b.Fatal(err)
	}
	for _, rq := range benchRequests {
		b.Run(rq.name, func(b *testing.B) {
			b.ReportAllocs()
			defer procstat.ReportCPU(b, procstat.Self())
			for b.Loop() {
				r.Match(rq.method, rq.host, rq.path, rq.header)
			}
		})
	}
}

// BenchmarkMatch100k runs the same requests against 100,020 routes built
// one Set at a time, as a node's snapshot layer builds them.
func BenchmarkMatch100k(b *testing.B) {
	bl := NewBuilder()
	for _, t := range table100k() {
		if err := bl.Set(t); err != nil {
			b.Fatal(err)
		}
	}
	r := bl.Router()
	for _, rq := range benchRequests {
		if m, ok := r.Match(rq.method, rq.host, rq.path, rq.header); rq.want != "" && (!ok || m.Route.ID != rq.want) {
			b.Fatalf("%s: matched %v, want %s", rq.name, m.Route, rq.want)
		}
		b.Run(rq.name, func(b *testing.B) {
			b.ReportAllocs()
			defer procstat.ReportCPU(b, procstat.Self())
			for b.Loop() {
				r.Match(rq.method, rq.host, rq.path, rq.header)
			}
		})
	}
}

// BenchmarkApplyChange100k is one route change on a 100,020-route
// Builder and the snapshot after it, per shape of route: the work a node
// does per route event, the datastore read aside.
func BenchmarkApplyChange100k(b *testing.B) {
	bl := NewBuilder()
	ts := table100k()
	for _, t := range ts {
		if err := bl.Set(t); err != nil {
			b.Fatal(err)
		}
	}
	bl.Router()
	for _, tc := range []struct {
		name string
		i    int
	}{{"exact_host", 4 * 1234}, {"prefix_only", 4*1234 + 1}, {"wildcard_host", 4*1234 + 2}, {"method_header", 4*1234 + 3}} {
		b.Run(tc.name, func(b *testing.B) {
			t := ts[tc.i]
			moved := *t.Route
			moved.Paths = append([]string{"/moved"}, t.Route.Paths...)
			versions := []Target{{Route: &moved, Service: t.Service}, t}
			b.ReportAllocs()
			defer procstat.ReportCPU(b, procstat.Self())
			i := 0
			for b.Loop() {
				if err := bl.Set(versions[i%2]); err != nil {
					b.Fatal(err)
				}
				bl.Router()
				i++
			}
		})
	}
	b.Run("delete_and_add", func(b *testing.B) {
		t := ts[4*777+1]
		b.ReportAllocs()
		defer procstat.ReportCPU(b, procstat.Self())
		for b.Loop() {
			bl.Delete(t.Route.ID)
			bl.Router()
			if err := bl.Set(t); err != nil {
				b.Fatal(err)
			}
			bl.Router()
		}
	})
}

// BenchmarkNew100k is a full build of 100,020 routes (a node's recovery
// path).
func BenchmarkNew100k(b *testing.B) {
	ts := table100k()
	b.ReportAllocs()
	defer procstat.ReportCPU(b, procstat.Self())
	for b.Loop() {
		if _, err := New(ts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNew10k(b *testing.B) {
	ts := table10k()
	b.ReportAllocs()
	defer procstat.ReportCPU(b, procstat.Self())
	for b.Loop() {
		if _, err := New(ts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, p := range []string{"/api/v1/users/42", "/api//v1/./users/%34%32"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Normalize(p)
			}
		})
	}
}

func BenchmarkUpstreamPath(b *testing.B) {
	sp := "/svc"
	m := Match{Route: route("r"), Service: &entity.Service{Path: &sp}, Prefix: "/api"}
	b.ReportAllocs()
	for b.Loop() {
		m.UpstreamPath("/api/users/42")
	}
}

func TestMatchConcurrent(t *testing.T) {
	r, err := New(table10k())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, len(benchRequests))
	for _, rq := range benchRequests {
		go func() {
			got := ""
			for range 100 {
				m, ok := r.Match(rq.method, rq.host, rq.path, rq.header)
				if got = ""; ok {
					got = m.Route.ID
				}
			}
			if got != rq.want {
				got = rq.name + ": got " + got + ", want " + rq.want
			} else {
				got = ""
			}
			done <- got
		}()
	}
	for range benchRequests {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
