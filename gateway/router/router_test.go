package router

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// route builds a route with Kong's defaults (strip_path true, v0) and opts.
func route(id string, opts ...func(*entity.Route)) *entity.Route {
	r := &entity.Route{ID: id, StripPath: true, PathHandling: "v0", Protocols: []string{"http", "https"}}
	for _, o := range opts {
		o(r)
	}
	return r
}

func paths(p ...string) func(*entity.Route)   { return func(r *entity.Route) { r.Paths = p } }
func hosts(h ...string) func(*entity.Route)   { return func(r *entity.Route) { r.Hosts = h } }
func methods(m ...string) func(*entity.Route) { return func(r *entity.Route) { r.Methods = m } }
func created(t int64) func(*entity.Route)     { return func(r *entity.Route) { r.CreatedAt = t } }
func priority(p int) func(*entity.Route)      { return func(r *entity.Route) { r.RegexPriority = p } }

func header(name string, values ...string) func(*entity.Route) {
	return func(r *entity.Route) {
		if r.Headers == nil {
			r.Headers = map[string][]string{}
		}
		r.Headers[name] = values
	}
}

func targets(routes ...*entity.Route) []Target {
	ts := make([]Target, len(routes))
	for i, r := range routes {
		ts[i] = Target{Route: r}
	}
	return ts
}

type request struct {
	method, host, path string
	header             http.Header
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		routes []*entity.Route
		req    request
		want   string // route id, "" for no match
	}{
		{"prefix matches", []*entity.Route{route("a", paths("/foo"))}, request{"GET", "x", "/foo/bar", nil}, "a"},
		{"prefix is a plain string prefix", []*entity.Route{route("a", paths("/foo"))}, request{"GET", "x", "/foobar", nil}, "a"},
		{"prefix mismatch", []*entity.Route{route("a", paths("/foo"))}, request{"GET", "x", "/bar", nil}, ""},
		{"request shorter than prefix", []*entity.Route{route("a", paths("/foo/bar"))}, request{"GET", "x", "/foo", nil}, ""},
		{"longest prefix wins", []*entity.Route{route("a", paths("/foo")), route("b", paths("/foo/bar"))}, request{"GET", "", "/foo/bar/baz", nil}, "b"},
		{"longest prefix wins regardless of order", []*entity.Route{route("b", paths("/foo/bar")), route("a", paths("/foo"))}, request{"GET", "", "/foo/baz", nil}, "a"},
		{"no paths matches any path", []*entity.Route{route("a", methods("GET"))}, request{"GET", "", "/any/thing", nil}, "a"},
		{"empty request path is /", []*entity.Route{route("a", paths("/"))}, request{"GET", "", "", nil}, "a"},
		{"no routes", nil, request{"GET", "x", "/", nil}, ""},

		{"host exact ignores case and port", []*entity.Route{route("a", hosts("Example.com"))}, request{"GET", "EXAMPLE.COM:8000", "/", nil}, "a"},
		{"route host port ignored", []*entity.Route{route("a", hosts("example.com:8080"))}, request{"GET", "example.com", "/", nil}, "a"},
		{"host mismatch", []*entity.Route{route("a", hosts("example.com"))}, request{"GET", "example.org", "/", nil}, ""},
		{"host required but absent", []*entity.Route{route("a", hosts("example.com"))}, request{"GET", "", "/", nil}, ""},
		{"any host of the route", []*entity.Route{route("a", hosts("a.com", "b.com"))}, request{"GET", "b.com", "/", nil}, "a"},
		{"ipv6 host with port", []*entity.Route{route("a", hosts("[::1]"))}, request{"GET", "[::1]:8000", "/", nil}, "a"},
		{"leftmost wildcard", []*entity.Route{route("a", hosts("*.example.com"))}, request{"GET", "a.example.com", "/", nil}, "a"},
		{"leftmost wildcard spans labels", []*entity.Route{route("a", hosts("*.example.com"))}, request{"GET", "a.b.example.com", "/", nil}, "a"},
		{"leftmost wildcard needs a label", []*entity.Route{route("a", hosts("*.example.com"))}, request{"GET", "example.com", "/", nil}, ""},
		{"leftmost wildcard empty label", []*entity.Route{route("a", hosts("*.example.com"))}, request{"GET", ".example.com", "/", nil}, ""},
		{"rightmost wildcard", []*entity.Route{route("a", hosts("example.*"))}, request{"GET", "example.org", "/", nil}, "a"},
		{"rightmost wildcard with port", []*entity.Route{route("a", hosts("example.*"))}, request{"GET", "Example.co.uk:443", "/", nil}, "a"},
		{"rightmost wildcard anchored", []*entity.Route{route("a", hosts("example.*"))}, request{"GET", "www.example.org", "/", nil}, ""},
		{"plain host beats wildcard", []*entity.Route{route("a", hosts("*.example.com"), created(1)), route("b", hosts("api.example.com"), created(2))}, request{"GET", "api.example.com", "/", nil}, "b"},
		{"wildcard when plain host differs", []*entity.Route{route("a", hosts("*.example.com"), created(1)), route("b", hosts("api.example.com"), created(2))}, request{"GET", "www.example.com", "/", nil}, "a"},

		{"method exact", []*entity.Route{route("a", methods("GET", "POST"))}, request{"POST", "", "/", nil}, "a"},
		{"method case-sensitive", []*entity.Route{route("a", methods("GET"))}, request{"get", "", "/", nil}, ""},
		{"method mismatch", []*entity.Route{route("a", methods("GET"))}, request{"DELETE", "", "/", nil}, ""},

		{"headers and across names", []*entity.Route{route("a", header("x-a", "1"), header("x-b", "2"))}, request{"GET", "", "/", http.Header{"X-A": {"1"}}}, ""},
		{"headers all names present", []*entity.Route{route("a", header("x-a", "1"), header("x-b", "2"))}, request{"GET", "", "/", http.Header{"X-A": {"1"}, "X-B": {"2"}}}, "a"},
		{"header values or and case-insensitive", []*entity.Route{route("a", header("X-Version", "v1", "V2"))}, request{"GET", "", "/", http.Header{"X-Version": {"v2"}}}, "a"},
		{"header value mismatch", []*entity.Route{route("a", header("x-version", "v1"))}, request{"GET", "", "/", http.Header{"X-Version": {"v3"}}}, ""},
		{"header any request value", []*entity.Route{route("a", header("x-version", "v1"))}, request{"GET", "", "/", http.Header{"X-Version": {"v3", "v1"}}}, "a"},
		{"header nil request header", []*entity.Route{route("a", header("x-version", "v1"))}, request{"GET", "", "/", nil}, ""},

		{"every field must match", []*entity.Route{route("a", hosts("x.com"), paths("/p"), methods("GET"), header("x-a", "1"))}, request{"GET", "x.com", "/p", http.Header{"X-A": {"1"}}}, "a"},
		{"every field must match, one fails", []*entity.Route{route("a", hosts("x.com"), paths("/p"), methods("GET"), header("x-a", "1"))}, request{"PUT", "x.com", "/p", http.Header{"X-A": {"1"}}}, ""},
		{"more fields beat longer prefix", []*entity.Route{route("a", paths("/foo/bar")), route("b", hosts("x.com"), paths("/foo"))}, request{"GET", "x.com", "/foo/bar", nil}, "b"},
		{"shorter prefix with methods beats longer", []*entity.Route{route("a", methods("GET"), paths("/foo")), route("b", paths("/foo/bar"))}, request{"GET", "", "/foo/bar", nil}, "a"},
		{"longer prefix when methods fail", []*entity.Route{route("a", methods("GET"), paths("/foo")), route("b", paths("/foo/bar"))}, request{"POST", "", "/foo/bar", nil}, "b"},
		{"host-only beats path-only", []*entity.Route{route("a", paths("/foo")), route("b", hosts("x.com"))}, request{"GET", "x.com", "/foo", nil}, "b"},
		{"more headers win", []*entity.Route{route("a", header("x-a", "1"), paths("/")), route("b", header("x-a", "1"), header("x-b", "1"), paths("/"))}, request{"GET", "", "/", http.Header{"X-A": {"1"}, "X-B": {"1"}}}, "b"},
		{"regex beats longer prefix", []*entity.Route{route("a", paths("/foo/123/x")), route("b", paths(`~/foo/\d+`))}, request{"GET", "", "/foo/123/x", nil}, "b"},
		{"prefix when regex fails", []*entity.Route{route("a", paths("/foo/bar")), route("b", paths(`~/foo/\d+`))}, request{"GET", "", "/foo/bar", nil}, "a"},
		{"regex anchored at start", []*entity.Route{route("a", paths(`~/\d+`))}, request{"GET", "", "/a/123", nil}, ""},
		{"regex not anchored at end", []*entity.Route{route("a", paths(`~/foo`))}, request{"GET", "", "/foo/bar", nil}, "a"},
		{"regex_priority highest first", []*entity.Route{route("a", paths(`~/foo`), priority(1), created(1)), route("b", paths(`~/fo+`), priority(5), created(2))}, request{"GET", "", "/foo", nil}, "b"},
		{"older created_at wins", []*entity.Route{route("a", paths("/foo"), created(2)), route("b", paths("/foo"), created(1))}, request{"GET", "", "/foo", nil}, "b"},
		{"per-path rank: long path of a", []*entity.Route{route("a", paths("/x", "/foo/bar/baz")), route("b", paths("/foo/bar"))}, request{"GET", "", "/foo/bar/baz/1", nil}, "a"},
		{"per-path rank: short path of a loses", []*entity.Route{route("a", paths("/x", "/foo/bar/baz")), route("b", paths("/foo/bar"))}, request{"GET", "", "/foo/bar/1", nil}, "b"},

		{"normalized: dot segments", []*entity.Route{route("a", paths("/bar"))}, request{"GET", "", "/foo/../bar", nil}, "a"},
		{"normalized: decoded unreserved", []*entity.Route{route("a", paths("/foo"))}, request{"GET", "", "/%66o%6F", nil}, "a"},
		{"normalized: merged slashes", []*entity.Route{route("a", paths("/foo/bar"))}, request{"GET", "", "//foo//bar", nil}, "a"},
		{"normalized: reserved stays encoded", []*entity.Route{route("a", paths("/a/b"))}, request{"GET", "", "/a%2fb", nil}, ""},
		{"normalized: route path", []*entity.Route{route("a", paths("/a/./%62"))}, request{"GET", "", "/a/b", nil}, "a"},

		{"stream route left out", []*entity.Route{func() *entity.Route { r := route("a"); r.Protocols = []string{"tcp"}; return r }()}, request{"GET", "", "/", nil}, ""},
		{"grpc route kept", []*entity.Route{func() *entity.Route { r := route("a"); r.Protocols = []string{"grpc"}; return r }()}, request{"POST", "", "/", nil}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(targets(tt.routes...))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			m, ok := r.Match(tt.req.method, tt.req.host, tt.req.path, tt.req.header)
			got := ""
			if ok {
				got = m.Route.ID
			}
			if got != tt.want {
				t.Errorf("Match(%q, %q, %q) = %q, want %q", tt.req.method, tt.req.host, tt.req.path, got, tt.want)
			}
		})
	}
}

func TestMatchResult(t *testing.T) {
	svc := &entity.Service{ID: "s"}
	tests := []struct {
		name       string
		route      *entity.Route
		path       string
		wantPrefix string
	}{
		{"prefix path", route("a", paths("/foo")), "/foo/bar", "/foo"},
		{"normalized prefix path", route("a", paths("/f%6Fo")), "/foo/bar", "/foo"},
		{"regex whole match", route("a", paths(`~/users/\d+`)), "/users/42/posts", "/users/42"},
		{"regex on normalized path", route("a", paths(`~/users/\d+`)), "/x/../users/42", "/users/42"},
		{"no paths", route("a"), "/anything", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New([]Target{{Route: tt.route, Service: svc}})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			m, ok := r.Match("GET", "", tt.path, nil)
			if !ok {
				t.Fatal("no match")
			}
			if m.Route != tt.route || m.Service != svc || m.Prefix != tt.wantPrefix {
				t.Errorf("Match = {%s, %v, %q}, want {%s, %v, %q}", m.Route.ID, m.Service, m.Prefix, tt.route.ID, svc, tt.wantPrefix)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	good := route("good", paths("/good"))
	tests := []struct {
		name    string
		target  Target
		wantErr string
	}{
		{"invalid regex", Target{Route: route("bad", paths("~/(foo"))}, "router: route bad: invalid regex path"},
		{"path without slash", Target{Route: route("bad", paths("foo"))}, "router: route bad: path \"foo\" must start with /"},
		{"two wildcards", Target{Route: route("bad", hosts("*.example.*"))}, "router: route bad: invalid wildcard host"},
		{"wildcard in the middle", Target{Route: route("bad", hosts("a.*.com"))}, "router: route bad: invalid wildcard host"},
		{"bare wildcard", Target{Route: route("bad", hosts("*"))}, "router: route bad: invalid wildcard host"},
		{"empty host", Target{Route: route("bad", hosts(""))}, "router: route bad: empty host"},
		{"host header", Target{Route: route("bad", header("Host", "x"))}, "router: route bad: header host is not allowed"},
		{"header without values", Target{Route: route("bad", header("x-a"))}, "router: route bad: header \"x-a\" has no values"},
		{"named route", Target{Route: func() *entity.Route { r := route("bad", paths("~(")); n := "api"; r.Name = &n; return r }()}, `router: route "api" (bad)`},
		{"nil route", Target{}, "router: target 1 has no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New([]Target{{Route: good}, tt.target})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
			if r.Len() != 1 {
				t.Errorf("Len = %d, want 1", r.Len())
			}
			if m, ok := r.Match("GET", "", "/good", nil); !ok || m.Route != good {
				t.Errorf("good route no longer matches: %v %v", m, ok)
			}
		})
	}
}

func TestNewJoinsErrors(t *testing.T) {
	_, err := New(targets(route("a", paths("~(")), route("b", paths("~["))))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("New error = %v, want two joined errors", err)
	}
}

func TestNilRouter(t *testing.T) {
	var r *Router
	if _, ok := r.Match("GET", "x", "/", nil); ok {
		t.Error("nil Router matched")
	}
	if r.Len() != 0 {
		t.Errorf("nil Router Len = %d", r.Len())
	}
}

func TestLen(t *testing.T) {
	stream := route("s")
	stream.Protocols = []string{"tls"}
	r, err := New(targets(route("a", paths("/a", "/b")), route("b"), stream))
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 {
		t.Errorf("Len = %d, want 2 (stream routes are left out)", r.Len())
	}
}
