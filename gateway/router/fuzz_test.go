package router

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// fuzzRouter is a fixed route set that exercises every index: exact and
// wildcard hosts, prefixes sharing tree edges, regexes, methods and headers.
func fuzzRouter(t testing.TB) *Router {
	svcPath := "/svc"
	svc := &entity.Service{ID: "s", Path: &svcPath}
	v1 := func(r *entity.Route) { r.PathHandling = "v1" }
	keep := func(r *entity.Route) { r.StripPath = false }
	routes := []*entity.Route{
		route("root", paths("/")),
		route("api", paths("/api", "/api/v1/"), methods("GET", "POST")),
		route("apiv2", paths("/api/v2"), v1),
		route("users", paths(`~/users/(?P<id>\d+)`), priority(3)),
		route("files", paths(`~/files/.*\.txt$`), keep),
		route("host", hosts("example.com", "Example.org:8000")),
		route("wild", hosts("*.example.com"), paths("/w")),
		route("wildr", hosts("example.*"), keep, v1),
		route("hdr", header("x-version", "v1", "v2"), header("x-env", "prod"), paths("/h")),
		route("nopath", methods("DELETE")),
	}
	ts := make([]Target, len(routes))
	for i, r := range routes {
		ts[i] = Target{Route: r, Service: svc}
	}
	r, err := New(ts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func FuzzMatch(f *testing.F) {
	f.Add("GET", "example.com", "/api/v1/x", "x-version", "v1")
	f.Add("POST", "a.example.com:80", "/w/../w", "", "")
	f.Add("DELETE", "EXAMPLE.NET", "//users/42/", "X-Env", "prod")
	f.Add("GET", "[::1]:8000", "/files/a.txt", "x-version", "V2")
	f.Add("", "", "", "", "")
	f.Add("GET", ":", "%", "\x00", "\xff")
	f.Add("PUT", "*.example.com", "/%2e%2E/api/v2%2f", "x-env", "PROD")
	r := fuzzRouter(f)
	f.Fuzz(func(t *testing.T, method, host, path, hname, hvalue string) {
		h := http.Header{}
		h.Add(hname, hvalue)
		h.Set("X-Env", "prod")
		m, ok := r.Match(method, host, path, h)
		if !ok {
			if strings.HasPrefix(Normalize(path), "/") || path == "" {
				t.Fatalf("Match(%q, %q, %q) found nothing, but route root matches every /path", method, host, path)
			}
			return
		}
		if m.Route == nil {
			t.Fatal("Match reported true with a nil route")
		}
		np := path
		if np == "" {
			np = "/"
		}
		if np = Normalize(np); !strings.HasPrefix(np, m.Prefix) {
			t.Fatalf("Match(%q).Prefix = %q is not a prefix of the normalized path %q", path, m.Prefix, np)
		}
		up := m.UpstreamPath(path)
		if !strings.HasPrefix(up, "/") || strings.Contains(up, "//") {
			t.Fatalf("UpstreamPath(%q) = %q for route %s", path, up, m.Route.ID)
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"", "/", "/a/b", "//a/./b/../c/", "/%41%2f%zz%", "/%%61b", "a/../..", "/..%2E/.%2e/", "/a/b/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := Normalize(in)
		if again := Normalize(got); again != got {
			t.Fatalf("Normalize not idempotent: %q -> %q -> %q", in, got, again)
		}
		if isNormal(in) != (normalizeOnce(in) == in) {
			t.Fatalf("isNormal(%q) = %v, but normalizeOnce gives %q", in, isNormal(in), normalizeOnce(in))
		}
		if strings.Contains(got, "//") {
			t.Fatalf("Normalize(%q) = %q keeps //", in, got)
		}
		if strings.HasPrefix(in, "/") != strings.HasPrefix(got, "/") {
			t.Fatalf("Normalize(%q) = %q changed the leading slash", in, got)
		}
	})
}
