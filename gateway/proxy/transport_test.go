package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestKeepAliveReuse(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	p, _ := gateway(t, Options{}, route("r", []string{"/api"}, true, serviceFor(t, up.URL)))
	for range 20 {
		w := &discard{h: http.Header{}}
		p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://gw.test/api/x", nil))
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for 20 sequential requests, want 1", n)
	}
}
