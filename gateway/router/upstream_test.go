package router

import (
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
)

func TestUpstreamPath(t *testing.T) {
	tests := []struct {
		name        string
		servicePath *string // nil: service without path
		routePath   string  // "" for a route without paths
		strip       bool
		handling    string
		request     string
		want        string
	}{
		// Kong's admin API table, "Path handling algorithms".
		{"kong v0 keep", ptr("/s"), "/fv0", false, "v0", "/fv0/req", "/s/fv0/req"},
		{"kong v0 keep exact", ptr("/s"), "/fv0", false, "v0", "/fv0", "/s/fv0"},
		{"kong v1 keep", ptr("/s"), "/fv1", false, "v1", "/fv1/req", "/sfv1/req"},
		{"kong v1 keep exact", ptr("/s"), "/fv1", false, "v1", "/fv1", "/sfv1"},
		{"kong v0 strip", ptr("/s"), "/tv0", true, "v0", "/tv0/req", "/s/req"},
		{"kong v0 strip exact", ptr("/s"), "/tv0", true, "v0", "/tv0", "/s"},
		{"kong v1 strip", ptr("/s"), "/tv1", true, "v1", "/tv1/req", "/s/req"},
		{"kong v1 strip exact", ptr("/s"), "/tv1", true, "v1", "/tv1", "/s"},
		{"kong v0 keep slash route", ptr("/s"), "/fv0/", false, "v0", "/fv0/req", "/s/fv0/req"},
		{"kong v0 keep slash route exact", ptr("/s"), "/fv0/", false, "v0", "/fv0/", "/s/fv0/"},
		{"kong v1 keep slash service", ptr("/s/"), "/fv1/", false, "v1", "/fv1/req", "/s/fv1/req"},
		{"kong v1 keep slash service exact", ptr("/s/"), "/fv1/", false, "v1", "/fv1/", "/s/fv1/"},
		{"kong v0 strip slash route", ptr("/s"), "/tv0/", true, "v0", "/tv0/req", "/s/req"},
		{"kong v0 strip slash route exact", ptr("/s"), "/tv0/", true, "v0", "/tv0/", "/s/"},
		{"kong v1 strip slash route", ptr("/s"), "/tv1/", true, "v1", "/tv1/req", "/sreq"},
		{"kong v1 strip slash route exact", ptr("/s"), "/tv1/", true, "v1", "/tv1/", "/s"},

		// Service without a path is "/".
		{"nil path keep", nil, "/fv0", false, "v0", "/fv0/req", "/fv0/req"},
		{"nil path strip", nil, "/tv0", true, "v0", "/tv0/req", "/req"},
		{"nil path strip exact", nil, "/tv0", true, "v0", "/tv0", "/"},
		{"nil path strip trailing slash", nil, "/tv0", true, "v0", "/tv0/", "/"},
		{"nil path v1 strip exact", nil, "/tv1", true, "v1", "/tv1", "/"},
		{"nil path strip mid-segment", nil, "/tv0", true, "v0", "/tv0req", "/req"},
		{"root service strip", ptr("/"), "/tv0", true, "v0", "/tv0/a", "/a"},
		{"empty handling is v0", ptr("/s"), "/fv0", false, "", "/fv0/req", "/s/fv0/req"},

		// Slash edge cases.
		{"service trailing slash strip", ptr("/s/"), "/tv0", true, "v0", "/tv0/req", "/s/req"},
		{"service trailing slash strip exact", ptr("/s/"), "/tv0", true, "v0", "/tv0", "/s"},
		{"service trailing slash strip exact slash", ptr("/s/"), "/tv0", true, "v0", "/tv0/", "/s/"},
		{"service trailing slash keep", ptr("/s/"), "/fv0", false, "v0", "/fv0/req", "/s/fv0/req"},
		{"v0 keep root request", ptr("/s"), "/", false, "v0", "/", "/s"},
		{"v0 strip root route", ptr("/s"), "/", true, "v0", "/req", "/s/req"},
		{"v0 strip root route root request", ptr("/s"), "/", true, "v0", "/", "/s"},
		{"v1 strip collapses slashes", ptr("/s/"), "/tv1", true, "v1", "/tv1/req", "/s/req"},
		{"service double slash collapsed", ptr("/s//"), "/fv0", false, "v0", "/fv0", "/s/fv0"},
		{"dot postfix sanitized", ptr("/s"), "/tv0", true, "v0", "/tv0..", "/s"},
		{"request normalized first", ptr("/s"), "/tv0", true, "v0", "//tv0/a/../%62", "/s/b"},

		// Routes without paths strip "/" like Kong.
		{"no paths strip", ptr("/s"), "", true, "v0", "/req", "/s/req"},
		{"no paths strip root", ptr("/s"), "", true, "v0", "/", "/s"},
		{"no paths keep", ptr("/s"), "", false, "v0", "/req", "/s/req"},
		{"no paths v1 strip", ptr("/s"), "", true, "v1", "/req", "/sreq"},

		// Regex strips the whole match.
		{"regex strip", ptr("/s"), `~/users/\d+`, true, "v0", "/users/42/posts", "/s/posts"},
		{"regex keep", ptr("/s"), `~/users/\d+`, false, "v0", "/users/42/posts", "/s/users/42/posts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := route("r", func(r *entity.Route) { r.StripPath, r.PathHandling = tt.strip, tt.handling })
			if tt.routePath != "" {
				rt.Paths = []string{tt.routePath}
			}
			r, err := New([]Target{{Route: rt, Service: &entity.Service{ID: "s", Path: tt.servicePath}}})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			m, ok := r.Match("GET", "", tt.request, nil)
			if !ok {
				t.Fatalf("Match(%q) found nothing", tt.request)
			}
			if got := m.UpstreamPath(tt.request); got != tt.want {
				t.Errorf("UpstreamPath(%q) = %q, want %q (prefix %q)", tt.request, got, tt.want, m.Prefix)
			}
		})
	}
}

func TestUpstreamPathDegenerate(t *testing.T) {
	tests := []struct {
		name string
		m    Match
		path string
		want string
	}{
		{"zero match", Match{}, "/a/b", "/a/b"},
		{"no service", Match{Route: route("r"), Prefix: "/a"}, "/a/b", "/b"},
		{"empty service path", Match{Route: route("r"), Service: &entity.Service{Path: ptr("")}}, "/a", "/a"},
		{"prefix not in path", Match{Route: route("r"), Prefix: "/x"}, "/a/b", "/a/b"},
		{"relative path", Match{}, "a/b", "/a/b"},
		{"empty path", Match{}, "", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.UpstreamPath(tt.path); got != tt.want {
				t.Errorf("UpstreamPath(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestUpstreamPathNoAlloc(t *testing.T) {
	m := Match{Route: route("r", func(r *entity.Route) { r.StripPath = false }), Prefix: "/a"}
	if n := testing.AllocsPerRun(100, func() { _ = m.UpstreamPath("/a/b") }); n != 0 {
		t.Errorf("UpstreamPath without service path or strip allocates %v times, want 0", n)
	}
}

func ptr(s string) *string { return &s }
