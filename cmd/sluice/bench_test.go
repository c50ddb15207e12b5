package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	benchrun "github.com/sluice-gw/sluice/bench/run"
)

// TestEnvList checks --node-env: KEY=VALUE pairs accumulate, anything
// else is refused with the value named.
func TestEnvList(t *testing.T) {
	var l envList
	for _, v := range []string{"GOMAXPROCS=2", "GODEBUG=gctrace=1", "EMPTY="} {
		if err := l.Set(v); err != nil {
			t.Errorf("Set(%q) = %v", v, err)
		}
	}
	if got := l.String(); got != "GOMAXPROCS=2 GODEBUG=gctrace=1 EMPTY=" {
		t.Errorf("list = %q", got)
	}
	for _, v := range []string{"GOMAXPROCS", "=2", "A B=1", ""} {
		if err := l.Set(v); err == nil {
			t.Errorf("Set(%q) accepted", v)
		}
	}
}

// TestBenchBareProxyEngine checks `sluice bench bareproxy -engine`: an
// unknown engine is refused with the flag and the valid names, before
// anything listens.
func TestBenchBareProxyEngine(t *testing.T) {
	err := benchBareProxy(context.Background(), []string{"-engine", "nginx", "-upstream", "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), `-engine "nginx"`) || !strings.Contains(err.Error(), "fasthttp, httputil") {
		t.Fatalf("-engine nginx: %v; want an error naming -engine and fasthttp, httputil", err)
	}
}

// TestBareEngines checks that every engine of `sluice bench bareproxy`
// forwards to the upstream and returns nil once its context is done.
func TestBareEngines(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "up")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	for name, serve := range bareEngines {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- serve(ctx, ln, u) }()
			resp, err := http.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "up" {
				t.Errorf("got %d %q, want 200 \"up\"", resp.StatusCode, body)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve returned %v after cancel, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("serve did not return after cancel")
			}
		})
	}
}

// TestScaleFlags checks --routes, --consumers and --admin-routes: applied
// to the scale profile, defaults kept when not given, refused for other
// profiles, negative values and too few routes for the route changes.
func TestScaleFlags(t *testing.T) {
	p := benchrun.Profiles["scale"]
	if err := scaleFlags(&p, 20000, 100000, -1); err != nil {
		t.Fatal(err)
	}
	if p.ScaleRoutes != 20000 || p.Consumers != 100000 || p.ScaleAdminRoutes != benchrun.Profiles["scale"].ScaleAdminRoutes {
		t.Errorf("profile after --routes 20000 --consumers 100000: %d routes, %d consumers, %d admin routes", p.ScaleRoutes, p.Consumers, p.ScaleAdminRoutes)
	}
	if err := scaleFlags(&p, 0, 0, 0); err != nil || p.ScaleAdminRoutes != 0 || p.ScaleRoutes != 20000 {
		t.Errorf("--admin-routes 0: %v, %d admin routes, %d routes; want creation skipped, the rest kept", err, p.ScaleAdminRoutes, p.ScaleRoutes)
	}
	def := benchrun.Profiles["default"]
	for _, tt := range []struct {
		p                         *benchrun.Profile
		routes, consumers, admins int
		want                      string
	}{
		{&def, 1000, 0, -1, "are for --profile scale"},
		{&def, 0, 0, 5, "are for --profile scale"},
		{&p, -1, 0, -1, "must not be negative"},
		{&p, 10, 0, -1, "need at least 69"},
	} {
		if err := scaleFlags(tt.p, tt.routes, tt.consumers, tt.admins); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("scaleFlags(%s, %d, %d, %d) = %v, want %q", tt.p.Name, tt.routes, tt.consumers, tt.admins, err, tt.want)
		}
	}
}
