package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluice-gw/sluice/bench/harness"
)

// The data plane regression tests: every hole found from outside in the
// proxy, replayed byte for byte on raw sockets against a real node, with a
// raw-socket upstream that records every byte it receives. Each case
// asserts what the client got and what reached the upstream; in the
// framing cases that is nothing at all.

// okResponse is the raw upstream's answer to every request it can parse.
const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// smuggled is pipelined after each malformed request: it must never reach
// the upstream.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

// TestDataplaneDefaultConfig runs on one node with the default config:
// request framing (RFC 9112), key-auth's key_in_body and WebSocket.
func TestDataplaneDefaultConfig(t *testing.T) {
	t.Parallel()
	n := startCluster(t, 1).Nodes[0]
	t.Run("cases", func(t *testing.T) {
		for _, c := range []struct{ name, req string }{
			// %s is the route's path.
			{"content-length-with-transfer-encoding", "POST %s/cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" +
				"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
			{"content-length-with-mixed-case-transfer-encoding", "POST %s/cl-te-case HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" +
				"tRaNsFeR-eNcOdInG: chunked\r\n\r\n0\r\n\r\n"},
			{"content-length-with-identity-coding", "POST %s/cl-identity HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n" +
				"Transfer-Encoding: identity\r\n\r\nabc"},
			{"identity-coding-alone", "POST %s/identity HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabc"},
			{"obs-fold", "GET %s/fold HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n"},
			{"chunk-size-zz", "POST %s/zz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
			{"chunk-size-negative", "POST %s/neg HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n"},
			{"chunk-size-overflow", "POST %s/ovf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"},
			{"chunk-size-0x", "POST %s/0x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n"},
			{"chunk-shorter-than-declared", "POST %s/short HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5\r\nabc\r\n0\r\n\r\n"},
		} {
			t.Run("framing/"+c.name, func(t *testing.T) {
				t.Parallel()
				testFraming(t, n, "f-"+c.name, c.req)
			})
		}
		t.Run("key-in-body/small", func(t *testing.T) { t.Parallel(); testKeyInBodySmall(t, n) })
		t.Run("key-in-body/2MiB", func(t *testing.T) { t.Parallel(); testKeyInBodyLarge(t, n) })
		t.Run("websocket", func(t *testing.T) { t.Parallel(); testWebSocket(t, n) })
	})
	expectClientErrors(t, n)
}

// TestDataplaneTightLimits runs on one node with a 16k body limit and
// one-second client timeouts: 413s, slow and idle clients.
func TestDataplaneTightLimits(t *testing.T) {
	t.Parallel()
	n := startCluster(t, 1, "SLUICE_CLIENT_MAX_BODY_SIZE=16k", "SLUICE_NGINX_HTTP_CLIENT_BODY_TIMEOUT=1",
		"SLUICE_NGINX_HTTP_KEEPALIVE_TIMEOUT=1", "SLUICE_NGINX_HTTP_CLIENT_HEADER_TIMEOUT=1").Nodes[0]
	t.Run("cases", func(t *testing.T) {
		chunk := strings.Repeat("b", 4096)
		for _, c := range []struct{ name, req string }{
			{"content-length", "POST %s/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 20480\r\n\r\n" + strings.Repeat(chunk, 5)},
			{"chunked", "POST %s/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				strings.Repeat("1000\r\n"+chunk+"\r\n", 5) + "0\r\n\r\n"},
		} {
			t.Run("body-over-client_max_body_size/"+c.name, func(t *testing.T) {
				t.Parallel()
				testTooLarge(t, n, "big-"+c.name, c.req)
			})
		}
		for _, c := range []struct {
			name      string
			buffering bool
			clients   int
			length    int
			sent      int
		}{
			{"request_buffering=true", true, 50, 10, 3},
			{"request_buffering=false", false, 50, 10, 3},
			// More than the 8 KiB an engine may read ahead before the
			// handler runs, so that the stream reaches the upstream.
			{"request_buffering=false/past-read-ahead", false, 10, 16000, 12 << 10},
		} {
			t.Run("slow-body/"+c.name, func(t *testing.T) {
				t.Parallel()
				testSlowBody(t, n, c.buffering, c.clients, c.length, c.sent)
			})
		}
		t.Run("idle-keep-alive", func(t *testing.T) { t.Parallel(); testIdleKeepAlive(t, n) })
		t.Run("slow-header", func(t *testing.T) { t.Parallel(); testSlowHeader(t, n) })
	})
	expectClientErrors(t, n)
}

// testFraming sends req (with the route's path for %s) and a pipelined
// request in one write: 400 and a close, and nothing reaches the upstream.
func testFraming(t *testing.T, n *harness.Node, name, req string) {
	u := startRawUpstream(t)
	path := u.route(t, n, name)
	conn, br := dialProxy(t, n)
	sendRaw(t, conn, fmt.Sprintf(req, path)+smuggled)
	a := readAnswer(conn, br, 3*time.Second)
	switch {
	case a.err != nil:
		t.Errorf("client got no answer (%v), want 400", a.err)
	case a.status != http.StatusBadRequest:
		t.Errorf("client got %d %q, want 400", a.status, a.body)
	case !strings.Contains(a.body, "message"):
		t.Errorf("client got 400 with body %q, want Kong's JSON {\"message\":...}", a.body)
	}
	if a.err == nil {
		if closed, extra := awaitClose(conn, br, 2*time.Second); !closed || len(extra) > 0 {
			t.Errorf("after the %d the connection was %s and the proxy sent %s; want it closed at once with nothing more "+
				"(the pipelined GET /smuggled must not be served)", a.status, openOrClosed(closed), show(extra))
		}
	}
	time.Sleep(200 * time.Millisecond) // anything forwarded in the background lands meanwhile
	u.expectNothing(t)
	u.expectRouted(t, n, path)
}

// testTooLarge sends req, whose body is over client_max_body_size=1k: 413,
// and nothing reaches the upstream.
func testTooLarge(t *testing.T, n *harness.Node, name, req string) {
	u := startRawUpstream(t)
	path := u.route(t, n, name)
	conn, br := dialProxy(t, n)
	sendRaw(t, conn, fmt.Sprintf(req, path))
	if a := readAnswer(conn, br, 3*time.Second); a.err != nil || a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("client got %s, want 413", a)
	}
	time.Sleep(200 * time.Millisecond)
	u.expectNothing(t)
	u.expectRouted(t, n, path)
}

// testSlowBody stalls clients after sent of their length body bytes: each
// is answered 408 (or at least disconnected) within ~3 s of
// client_body_timeout=1, and no upstream connection is left behind. The
// clients keep their side open until the upstream is checked, so that only
// the proxy's timeout can free the upstream.
func testSlowBody(t *testing.T, n *harness.Node, buffering bool, clients, length, sent int) {
	const bound = 3 * time.Second
	u := startRawUpstream(t)
	name := fmt.Sprintf("slow-buffering-%v-%d", buffering, length)
	path := u.route(t, n, name, "request_buffering", fmt.Sprint(buffering))
	head := fmt.Sprintf("POST %s/slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, length, strings.Repeat("a", sent))
	results := make([]string, clients) // "" when the client was answered as it should
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", proxyAddr(n), 5*time.Second)
			if err != nil {
				results[i] = err.Error()
				return
			}
			t.Cleanup(func() { conn.Close() })
			results[i] = stallAndWait(conn, head, bound)
		}()
	}
	wg.Wait()
	var bad []string
	for i, r := range results {
		if r != "" {
			bad = append(bad, fmt.Sprintf("client %d: %s", i, r))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d clients stalled mid-body were not answered 408 or disconnected within %v "+
			"(nginx_http_client_body_timeout=1), e.g. %s", len(bad), clients, bound, bad[0])
	}
	if buffering {
		u.expectNothing(t)
	} else {
		// The streams may have reached the upstream; the proxy must drop
		// their connections once the client's timeout fired.
		t.Logf("the stalled streams opened %d upstream connections", u.accepted())
		deadline := time.Now().Add(2 * time.Second)
		for u.open.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if open := u.open.Load(); open > 0 {
			t.Errorf("%d upstream connections still open %v after the clients stalled (nginx_http_client_body_timeout=1), want 0",
				open, bound+2*time.Second)
		}
	}
	for _, r := range u.requests() {
		if r.complete {
			t.Errorf("upstream received a complete request %s %s with a body of %d bytes, want none: the clients sent %d of %d",
				r.method, r.path, len(r.body), sent, length)
		}
	}
	u.expectRouted(t, n, path)
}

// stallAndWait sends head on conn and stalls; it returns "" when the proxy
// answers 408 or nothing and closes within bound, else what happened.
func stallAndWait(conn net.Conn, head string, bound time.Duration) string {
	start := time.Now()
	_ = conn.SetWriteDeadline(start.Add(bound))
	if _, err := io.WriteString(conn, head); err != nil {
		return err.Error()
	}
	br := bufio.NewReader(conn)
	a := readAnswer(conn, br, bound)
	switch {
	case errors.Is(a.err, io.EOF) || errors.Is(a.err, io.ErrUnexpectedEOF):
		return "" // closed with no answer
	case a.err != nil:
		return fmt.Sprintf("no answer and still open after %v (%v)", time.Since(start).Round(time.Millisecond), a.err)
	case a.status != http.StatusRequestTimeout:
		return fmt.Sprintf("client got %s, want 408", a)
	}
	if closed, extra := awaitClose(conn, br, bound-time.Since(start)); !closed {
		return fmt.Sprintf("got 408 but the connection was still open after %v (then sent %s)", bound, show(extra))
	}
	return ""
}

// testIdleKeepAlive makes one request on each of 100 connections, then
// idles: the proxy closes them all within ~3 s of keepalive_timeout=1.
func testIdleKeepAlive(t *testing.T, n *harness.Node) {
	const conns, bound = 100, 3 * time.Second
	u := startRawUpstream(t)
	path := u.route(t, n, "idle")
	results := make([]string, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = requestThenIdle(n, "GET "+path+"/idle HTTP/1.1\r\nHost: x\r\n\r\n", bound)
		}()
	}
	wg.Wait()
	notClosed := 0
	for i, r := range results {
		if r != "" {
			notClosed++
			if notClosed == 1 {
				t.Errorf("connection %d: %s", i, r)
			}
		}
	}
	if notClosed > 0 {
		t.Errorf("%d of %d idle keep-alive connections were not closed by the proxy within %v "+
			"(nginx_http_keepalive_timeout=1), want all", notClosed, conns, bound)
	}
	if got := len(u.requests()); got != conns {
		t.Errorf("upstream received %d requests, want %d (one per connection)", got, conns)
	}
}

// requestThenIdle sends req on a new connection, reads the answer and
// idles: "" when the proxy then closes the connection within bound.
func requestThenIdle(n *harness.Node, req string, bound time.Duration) string {
	conn, err := net.DialTimeout("tcp", proxyAddr(n), 5*time.Second)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return err.Error()
	}
	br := bufio.NewReader(conn)
	if a := readAnswer(conn, br, 5*time.Second); a.err != nil || a.status != 200 || a.body != "ok" {
		return fmt.Sprintf("client got %s, want 200 \"ok\" from the upstream", a)
	}
	if closed, extra := awaitClose(conn, br, bound); !closed {
		return fmt.Sprintf("still open %v after its answer (sent %s), want EOF", bound, show(extra))
	}
	return ""
}

// testSlowHeader sends half a request line and stalls: disconnected within
// ~3 s of client_header_timeout=1 (a 408 first is allowed), and nothing
// reaches the upstream.
func testSlowHeader(t *testing.T, n *harness.Node) {
	const bound = 3 * time.Second
	u := startRawUpstream(t)
	path := u.route(t, n, "slow-header")
	conn, br := dialProxy(t, n)
	start := time.Now()
	sendRaw(t, conn, "GET "+path+"/x HT")
	closed, got := awaitClose(conn, br, bound)
	switch {
	case !closed:
		t.Errorf("connection still open %v after half a request line (nginx_http_client_header_timeout=1), "+
			"want a close (sent %s)", bound, show(got))
	case len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 408")):
		t.Errorf("client got %s before the close, want nothing or a 408", show(got))
	default:
		t.Logf("disconnected after %v", time.Since(start).Round(time.Millisecond))
	}
	u.expectNothing(t)
	u.expectRouted(t, n, path)
}

// testKeyInBodySmall: a small form body carrying the key passes key-auth
// and reaches the upstream byte for byte.
func testKeyInBodySmall(t *testing.T, n *harness.Node) {
	u := startRawUpstream(t)
	path := u.keyInBodyRoute(t, n, "kib-small", "kib-small-key")
	body := "apikey=kib-small-key&pad=" + strings.Repeat("p", 100)
	conn, br := dialProxy(t, n)
	sendRaw(t, conn, formPost(path+"/small", body))
	if a := readAnswer(conn, br, 3*time.Second); a.err != nil || a.status != 200 || a.body != "ok" {
		t.Errorf("client got %s, want 200 \"ok\" from the upstream", a)
	}
	reqs := u.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream received %d requests, want 1; bytes: %s", len(reqs), show(u.received()))
	}
	r := reqs[0]
	if !r.complete || r.body != body || r.contentLength != int64(len(body)) {
		t.Errorf("upstream received body %q (%d bytes, Content-Length %d, complete %v), want %q (%d bytes, same Content-Length)",
			truncate(r.body), len(r.body), r.contentLength, r.complete, truncate(body), len(body))
	}
}

// testKeyInBodyLarge: a 2 MiB form body with key_in_body is refused with
// 413 (the plugin would have to buffer it whole), and nothing reaches the
// upstream, truncated or not.
func testKeyInBodyLarge(t *testing.T, n *harness.Node) {
	u := startRawUpstream(t)
	path := u.keyInBodyRoute(t, n, "kib-large", "kib-large-key")
	body := "apikey=kib-large-key&pad=" + strings.Repeat("p", 2<<20)
	conn, br := dialProxy(t, n)
	go func() { // the proxy may answer before reading it all
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, formPost(path+"/large", body))
	}()
	if a := readAnswer(conn, br, 5*time.Second); a.err != nil || a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("client got %s, want 413", a)
	}
	time.Sleep(200 * time.Millisecond)
	u.expectNothing(t)
}

// testWebSocket dials a WebSocket through the proxy to an echo upstream,
// exchanges text and binary messages and closes cleanly.
func testWebSocket(t *testing.T, n *harness.Node) {
	var (
		mu                  sync.Mutex
		upgrade, connection string
		upstreamRequests    int
		upstreamMessages    int
		upgrader            websocket.Upgrader
	)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upgrade, connection = r.Header.Get("Upgrade"), r.Header.Get("Connection")
		upstreamRequests++
		mu.Unlock()
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered 400
		}
		defer c.Close()
		for {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			mu.Lock()
			upstreamMessages++
			mu.Unlock()
			if c.WriteMessage(mt, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	admin(t, n, "POST", "/services", form("name", "ws-route", "url", up.URL), 201)
	admin(t, n, "POST", "/services/ws-route/routes", form("name", "ws-route", "paths[]", "/ws-route"), 201)

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws://"+proxyAddr(n)+"/ws-route/echo", nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("handshake through the proxy: %v (client got %d, want 101); upstream got %d requests, "+
			"the last with Upgrade %q and Connection %q, want 1 with \"websocket\" and \"Upgrade\"",
			err, status, upstreamRequests, upgrade, connection)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for i, m := range []struct {
		typ  int
		data []byte
	}{
		{websocket.TextMessage, []byte("hello")},
		{websocket.BinaryMessage, []byte{0, 1, 2, 0xfe, 0xff}},
		{websocket.TextMessage, []byte("third ✓")},
	} {
		if err := c.WriteMessage(m.typ, m.data); err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("message %d: client got type %d %q (%v), want the echo: type %d %q", i, typ, got, err, m.typ, m.data)
		}
	}
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")); err != nil {
		t.Fatalf("close: write: %v", err)
	}
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after the close frame the client got %v, want the upstream's close 1000", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.EqualFold(upgrade, "websocket") || !strings.Contains(strings.ToLower(connection), "upgrade") {
		t.Errorf("upstream saw Upgrade %q and Connection %q, want \"websocket\" and \"Upgrade\"", upgrade, connection)
	}
	if upstreamMessages != 3 {
		t.Errorf("upstream received %d messages, want 3", upstreamMessages)
	}
}

// expectClientErrors checks n's metrics after the cases above: client
// errors are counted as such (sluice_client_errors_total{reason}), and
// none was reported as an upstream error (a 502). The status listener and
// the Admin API serve the same registry; metricSum reads the latter.
func expectClientErrors(t *testing.T, n *harness.Node) {
	t.Helper()
	resp, err := http.Get(n.StatusURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `sluice_client_errors_total{reason="`) {
		t.Errorf("status /metrics has no sluice_client_errors_total{reason=...} series")
	} else if sum := metricSum(t, n, "sluice_client_errors_total", `reason="`); sum <= 0 {
		t.Errorf("sluice_client_errors_total summed over reasons is %v, want > 0:\n%s", sum,
			grep(string(page), "sluice_client_errors_total"))
	}
	if got := metricSum(t, n, "sluice_http_requests_total", `code="502"`); got != 0 {
		t.Errorf("sluice_http_requests_total counts %v 502s, want 0 (client errors are not upstream errors):\n%s", got,
			grep(string(page), `code="502"`))
	}
}

// rawUpstream is a raw-socket HTTP/1.1 upstream: it records every byte it
// receives per connection and every request it parses, and answers each
// with okResponse on a kept-alive connection. Safe for concurrent use.
type rawUpstream struct {
	ln net.Listener
	// open counts the connections accepted and not yet closed.
	open atomic.Int64
	// mu guards the fields below.
	mu    sync.Mutex
	conns []net.Conn
	raw   [][]byte // per connection, in accept order
	reqs  []upstreamRequest
}

// upstreamRequest is one request the raw upstream parsed.
type upstreamRequest struct {
	method, path  string
	header        http.Header
	contentLength int64
	body          string
	complete      bool // the body was read to its end
}

// startRawUpstream listens on loopback until the end of t.
func startRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	go u.accept()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, c := range u.conns {
			c.Close()
		}
	})
	return u
}

// route creates a service and a route named name to u on n, with extra
// route fields, and returns the route's path.
func (u *rawUpstream) route(t *testing.T, n *harness.Node, name string, extra ...string) string {
	t.Helper()
	admin(t, n, "POST", "/services", form("name", name, "url", "http://"+u.ln.Addr().String()), 201)
	admin(t, n, "POST", "/services/"+name+"/routes", form(append([]string{"name", name, "paths[]", "/" + name}, extra...)...), 201)
	return "/" + name
}

// keyInBodyRoute is route with key-auth (key_in_body=true) and a consumer
// whose key is key.
func (u *rawUpstream) keyInBodyRoute(t *testing.T, n *harness.Node, name, key string) string {
	t.Helper()
	path := u.route(t, n, name)
	admin(t, n, "POST", "/consumers", form("username", name), 201)
	admin(t, n, "POST", "/consumers/"+name+"/key-auth", form("key", key), 201)
	admin(t, n, "POST", "/routes/"+name+"/plugins", form("name", "key-auth", "config.key_in_body", "true"), 201)
	return path
}

// expectNothing fails t unless u received no byte at all.
func (u *rawUpstream) expectNothing(t *testing.T) {
	t.Helper()
	got := u.received()
	if len(got) == 0 {
		return
	}
	what := ""
	if bytes.Contains(got, []byte("/smuggled")) {
		what = " (the pipelined GET /smuggled got through)"
	}
	t.Errorf("upstream received %d bytes, want 0%s: %s", len(got), what, show(got))
}

// expectRouted sends a valid request to path on n and fails t unless u
// answers it: without this, "the upstream received nothing" would also
// hold for a route that was never wired.
func (u *rawUpstream) expectRouted(t *testing.T, n *harness.Node, path string) {
	t.Helper()
	conn, br := dialProxy(t, n)
	sendRaw(t, conn, "GET "+path+"/control HTTP/1.1\r\nHost: x\r\n\r\n")
	a := readAnswer(conn, br, 5*time.Second)
	seen := 0
	for _, r := range u.requests() {
		if r.path == "/control" {
			seen++
		}
	}
	if a.err != nil || a.status != 200 || a.body != "ok" || seen != 1 {
		t.Errorf("control request GET %s/control: client got %s and the upstream %d such requests; want 200 \"ok\" "+
			"from the raw upstream and 1 (else the route is not wired and the case proves nothing)", path, a, seen)
	}
}

// received returns every byte u received, connections in accept order.
func (u *rawUpstream) received() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return bytes.Join(u.raw, nil)
}

// accepted returns how many connections u accepted.
func (u *rawUpstream) accepted() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

func (u *rawUpstream) requests() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.reqs...)
}

func (u *rawUpstream) accept() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.open.Add(1)
		u.mu.Lock()
		u.conns = append(u.conns, c)
		u.raw = append(u.raw, nil)
		i := len(u.raw) - 1
		u.mu.Unlock()
		go u.serve(c, i)
	}
}

// serve parses requests from c until it cannot; the tee records the bytes
// it could not parse as well.
func (u *rawUpstream) serve(c net.Conn, i int) {
	defer u.open.Add(-1)
	defer c.Close()
	br := bufio.NewReader(io.TeeReader(c, connRecorder{u, i}))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, upstreamRequest{method: req.Method, path: req.URL.Path, header: req.Header,
			contentLength: req.ContentLength, body: string(body), complete: err == nil})
		u.mu.Unlock()
		if err != nil {
			return
		}
		if _, err := io.WriteString(c, okResponse); err != nil {
			return
		}
	}
}

// connRecorder appends what it is given to connection i's raw bytes.
type connRecorder struct {
	u *rawUpstream
	i int
}

func (r connRecorder) Write(p []byte) (int, error) {
	r.u.mu.Lock()
	defer r.u.mu.Unlock()
	r.u.raw[r.i] = append(r.u.raw[r.i], p...)
	return len(p), nil
}

// answer is what a client read from the proxy.
type answer struct {
	status int
	body   string
	err    error
}

func (a answer) String() string {
	if a.err != nil {
		return fmt.Sprintf("no answer (%v)", a.err)
	}
	return fmt.Sprintf("%d %q", a.status, truncate(a.body))
}

// proxyAddr is n's proxy as host:port.
func proxyAddr(n *harness.Node) string { return strings.TrimPrefix(n.ProxyURL, "http://") }

// dialProxy opens a raw connection to n's proxy, closed at the end of t.
func dialProxy(t *testing.T, n *harness.Node) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxyAddr(n), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// sendRaw writes raw to conn as is.
func sendRaw(t *testing.T, conn net.Conn, raw string) {
	t.Helper()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write to the proxy: %v", err)
	}
}

// readAnswer reads one response and its body from br within d.
func readAnswer(conn net.Conn, br *bufio.Reader, d time.Duration) answer {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(body), err: err}
}

// awaitClose reads conn until the proxy closes it (EOF or reset: closed)
// or d passes (not closed), and returns what it read meanwhile.
func awaitClose(conn net.Conn, br *bufio.Reader, d time.Duration) (closed bool, got []byte) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		n, err := br.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return false, got
		default:
			return true, got
		}
	}
}

// formPost is a raw form POST of body to path.
func formPost(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\n\r\n%s", path, len(body), body)
}

func openOrClosed(closed bool) string {
	if closed {
		return "closed"
	}
	return "still open"
}

// show quotes b for a failure message, shortened.
func show(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%q", truncate(string(b)))
}

func truncate(s string) string {
	if len(s) > 300 {
		return fmt.Sprintf("%s... (%d bytes)", s[:300], len(s))
	}
	return s
}
