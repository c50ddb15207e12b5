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
