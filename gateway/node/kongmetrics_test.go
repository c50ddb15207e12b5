package node

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

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
