package proxy

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// TestUpstreamClosesKeepAlive breaks the pooled connection under the
// proxy: the upstream answers one request per connection with a keep-alive
// response and closes the connection once the response is out, as a
// keep-alive timeout firing at that moment would. It proves that no
// request fails for it: a GET that meets the closed connection is sent
// again on a new one, and a POST (which must not be sent twice) checks the
// pooled connection first and never meets it. Each request reaches the
// upstream exactly once.
func TestUpstreamClosesKeepAlive(t *testing.T) {
	requests := make(chan string, 16)
	closed := make(chan struct{}, 16)
	up := rawServerFunc(t, func(c net.Conn) {
		defer func() { c.Close(); closed <- struct{}{} }()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		requests <- req.Method + " " + string(body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, serviceFor(t, up)))
	for i, method := range []string{"GET", "GET", "POST", "GET", "POST", "POST"} {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("payload")
		}
		req, _ := http.NewRequest(method, gw.URL+"/", body)
		resp, got := get(t, req)
		if resp.StatusCode != 200 || got != "ok" {
			t.Fatalf("request %d (%s): %d %q", i, method, resp.StatusCode, got)
		}
		<-closed // the pooled connection is now closed by the upstream
		// Give its FIN a moment to reach the gateway's socket: the probe
		// before a POST (like net/http's background reader) can only see a
		// close that has arrived.
		time.Sleep(20 * time.Millisecond)
		want := method + " "
		if method == "POST" {
			want += "payload"
		}
		if r := <-requests; r != want {
			t.Fatalf("request %d: upstream got %q, want %q", i, r, want)
		}
	}
	if n := len(requests); n != 0 {
		t.Fatalf("upstream got %d extra requests", n)
	}
}

// TestRequestBodyFraming sends bodies of known and unknown length, an empty
// POST and an Expect: 100-continue request through the proxy and checks
// what the upstream received.
func TestRequestBodyFraming(t *testing.T) {
	type seen struct {
		body, te, cl, expect string
	}
	got := make(chan seen, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{body: string(b), te: strings.Join(r.TransferEncoding, ","), cl: r.Header.Get("Content-Length"), expect: r.Header.Get("Expect")}
		_, _ = io.WriteString(w, "done")
	}))
	defer up.Close()
	_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, serviceFor(t, up.URL)))
	big := strings.Repeat("0123456789", 10_000) // several body chunks
	tests := []struct {
		name   string
		body   io.Reader // an io.MultiReader hides the length: chunked
		expect bool
		want   seen
	}{
		{name: "content-length", body: strings.NewReader(big), want: seen{body: big, cl: "100000"}},
		{name: "chunked", body: io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")), want: seen{body: "abcdef", te: "chunked"}},
		{name: "empty POST", want: seen{cl: "0"}},
		{name: "100-continue", body: strings.NewReader("hello"), expect: true, want: seen{body: "hello", cl: "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, gw.URL+"/", tt.body)
			if tt.expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, body := get(t, req)
			if resp.StatusCode != 200 || body != "done" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			if s := <-got; s != tt.want {
				t.Fatalf("upstream saw body of %d bytes, Transfer-Encoding %q, Content-Length %q, Expect %q; want %d bytes, %q, %q, %q",
					len(s.body), s.te, s.cl, s.expect, len(tt.want.body), tt.want.te, tt.want.cl, tt.want.expect)
			}
		})
	}
}

// TestInterimResponses has the upstream send 100 Continue and 103 Early
// Hints before its answer: the client gets the final response only.
func TestInterimResponses(t *testing.T) {
	up := rawServer(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+
		"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal")
	_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, serviceFor(t, up)))
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/", nil)
	resp, body := get(t, req)
	if resp.StatusCode != 201 || body != "final" || resp.Header.Get("Link") != "" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// TestUpstreamConnectionLifetime checks when upstream connections close: a
// response with Connection: close is never reused, and idle connections
// close after IdleConnTimeout.
func TestUpstreamConnectionLifetime(t *testing.T) {
	var opened, closedConns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closedConns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	_, gw := gateway(t, Options{IdleConnTimeout: 100 * time.Millisecond}, route("r", []string{"/"}, false, serviceFor(t, up.URL)))
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/close", nil)
		if resp, body := get(t, req); resp.StatusCode != 200 || body != "ok" || resp.Header.Get("Connection") != "" {
			t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
		}
	}
	if n := opened.Load(); n != 3 {
		t.Fatalf("%d upstream connections for 3 Connection: close responses, want 3", n)
	}
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/keep", nil)
	if resp, _ := get(t, req); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for closedConns.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 4 upstream connections closed 5 s after the last request; idle timeout is 100 ms", closedConns.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUpstreamStallsMidBody has the upstream send its head and part of the
// body, then stall for longer than the service's read_timeout: the proxy
// gives up at read_timeout, and the client never gets the upstream's
// response as if it were complete. A small body is read whole before the
// client gets anything, so the client gets Kong's 504 instead; a streamed
// one has its head sent already, so the client's connection is aborted,
// the only way left to say the body is incomplete.
func TestUpstreamStallsMidBody(t *testing.T) {
	for _, tt := range []struct {
		name   string
		length int // declared; the upstream sends half
		status int // what the client sees, 0 = a body that ends in an error
	}{
		{"small body, read whole: 504", 10, http.StatusGatewayTimeout},
		{"streamed body: connection aborted", 2 * smallBody, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(tt.length))
				_, _ = io.WriteString(w, strings.Repeat("x", tt.length/2))
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			defer up.Close()
			svc := serviceFor(t, up.URL)
			svc.ReadTimeout = 200
			_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, svc))
			start := time.Now()
			resp, err := http.Get(gw.URL + "/")
			if err == nil {
				var body []byte
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case tt.status != 0 && resp.StatusCode != tt.status:
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
				case tt.status == 0 && err == nil:
					t.Fatalf("read the whole response (%d bytes, status %d) from a body that stalled at half of %d bytes",
						len(body), resp.StatusCode, tt.length)
				}
			} else if tt.status != 0 {
				t.Fatalf("client error %v, want a %d", err, tt.status)
			}
			if waited := time.Since(start); waited > 5*time.Second {
				t.Fatalf("the response stalled for %v; read_timeout is 200 ms", waited)
			}
		})
	}
}

// TestClientAbortClosesUpstreamCall has the client give up while the
// upstream is still thinking: the proxy closes its upstream connection at
// once (the upstream sees its request cancelled) instead of waiting for
// read_timeout (60 s here).
func TestClientAbortClosesUpstreamCall(t *testing.T) {
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(30 * time.Second):
		}
	}))
	defer up.Close()
	svc := serviceFor(t, up.URL)
	svc.ReadTimeout = 60_000
	_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, svc))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/", nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client error %v, want its deadline", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was still open 10 s after the client went away")
	}
}

// TestUpstreamAnswersBeforeBody has the upstream refuse a large upload with
// 413 without reading it: the proxy's write stalls until write_timeout,
// then the client gets the upstream's 413, not a gateway error.
func TestUpstreamAnswersBeforeBody(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := rawServerFunc(t, func(c net.Conn) {
		go func() {
			defer c.Close()
			if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
			<-release // hold the connection open, reading nothing
		}()
	})
	svc := serviceFor(t, up)
	svc.WriteTimeout = 300
	_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, svc))
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/", strings.NewReader(strings.Repeat("x", 64<<20)))
	resp, body := get(t, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body != "too big!" {
		t.Fatalf("%d %q, want the upstream's 413", resp.StatusCode, body)
	}
}

// TestHTTPSUpstream proxies to a TLS upstream whose certificate is signed
// by a private CA: trusted through UpstreamRootCAs it answers; with the
// host's trust store alone the certificate is refused and the client gets
// Kong's 502, never the upstream's answer.
func TestHTTPSUpstream(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "over tls to "+r.URL.Path)
	}))
	defer up.Close()
	svc := serviceFor(t, up.URL)
	svc.Protocol = "https"
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	for _, tt := range []struct {
		name   string
		roots  *x509.CertPool
		status int
		body   string
	}{
		{"trusted", roots, 200, "over tls to /x"},
		{"system store only", nil, 502, "{\"message\":\"An invalid response was received from the upstream server\"}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, gw := gateway(t, Options{UpstreamRootCAs: tt.roots}, route("r", []string{"/"}, false, svc))
			req, _ := http.NewRequest(http.MethodGet, gw.URL+"/x", nil)
			if resp, body := get(t, req); resp.StatusCode != tt.status || body != tt.body {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

// TestClientPools checks which services share an upstream client (and so
// a connection pool): those at the same address, with the same TLS
// setting and the same timeouts, all of which the client applies now,
// HTTPS included.
func TestClientPools(t *testing.T) {
	p := New(Options{})
	t.Cleanup(p.Close)
	client := func(protocol string, port, write int) *fasthttp.HostClient {
		s := &entity.Service{Protocol: protocol, Host: "127.0.0.1", Port: port, ConnectTimeout: 60000, WriteTimeout: write, ReadTimeout: 60000}
		return p.upstreams.client(p.addrOf(s), s)
	}
	if a, b := client("http", 80, 1000), client("http", 80, 1000); a != b {
		t.Error("two http services with the same address and timeouts got two clients")
	}
	if client("http", 80, 1000) == client("http", 80, 2000) {
		t.Error("http services with different write_timeout share a client")
	}
	if client("https", 443, 1000) == client("https", 443, 2000) {
		t.Error("https services with different write_timeout share a client; it applies write_timeout too")
	}
	if client("http", 8080, 1000) == client("https", 8080, 1000) {
		t.Error("an http and an https service share a client")
	}
	if client("http", 80, 1000) == client("http", 81, 1000) {
		t.Error("services at different ports share a client")
	}
}
