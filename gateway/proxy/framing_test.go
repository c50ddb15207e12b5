package proxy

import (
	"bufio"
	"encoding/json"
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
)

// recorder is a raw-socket upstream: it records every byte it receives and
// answers each request it can parse with "ok".
type recorder struct {
	mu       sync.Mutex
	got      strings.Builder // every connection's bytes, in arrival order
	conns    []*connLog      // each connection's bytes
	open     int
	complete int // requests received whole, body included
	addr     string
}

// connLog records one upstream connection's bytes.
type connLog struct {
	r *recorder
	b strings.Builder
}

func (l *connLog) Write(p []byte) (int, error) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.b.Write(p)
	return l.r.got.Write(p)
}

func newRecorder(t testing.TB) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &recorder{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *recorder) serve(c net.Conn) {
	defer c.Close()
	log := &connLog{r: r}
	r.mu.Lock()
	r.open++
	r.conns = append(r.conns, log)
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.open--; r.mu.Unlock() }()
	br := bufio.NewReader(io.TeeReader(c, log))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			_, _ = io.Copy(io.Discard, br) // record the rest all the same
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		r.mu.Lock()
		r.complete++
		r.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// connsSince returns the bytes of each connection opened after the first
// n connections.
func (r *recorder) connsSince(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.conns[n:] {
		out = append(out, l.b.String())
	}
	return out
}

func (r *recorder) connCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *recorder) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

func (r *recorder) openConns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open
}

// exchangeRaw writes raw to the proxy and returns the first response and
// whether the proxy then closed the connection.
func exchangeRaw(t *testing.T, addr, raw string) (*http.Response, string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_, err = br.ReadByte()
	return resp, string(body), err == io.EOF
}

func TestFramingRefusedBeforeUpstream(t *testing.T) {
	up := newRecorder(t)
	svc := serviceFor(t, "http://"+up.addr)
	buffered := route("b", []string{"/b"}, true, svc)
	buffered.Route.RequestBuffering = true
	streamed := route("s", []string{"/s"}, true, svc)
	_, gw := gateway(t, Options{MaxBodySize: 16}, buffered, streamed)
	const smuggled = "GET /b/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name, raw string
		status    int
	}{
		{"content-length with chunked", "POST /b/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"content-length with mixed-case chunked", "POST /b/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ntRaNsFeR-eNcOdInG: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"content-length with identity coding", "POST /b/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: identity\r\n\r\nabc" + smuggled, 400},
		{"identity coding alone", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabc" + smuggled, 400},
		{"obs-fold", "POST /b/ HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\nContent-Length: 3\r\n\r\nabc" + smuggled, 400},
		{"folded transfer-encoding", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc" + smuggled, 400},
		{"chunk size zz", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk size -1", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk size overflow", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk size 0x3", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"short chunk", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"length over limit", "POST /b/ HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n" + strings.Repeat("a", 17), 413},
		{"chunked over limit", "POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n" + strings.Repeat("a", 17) + "\r\n0\r\n\r\n", 413},
		{"streamed length over limit", "POST /s/ HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n" + strings.Repeat("a", 17), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.received()
			resp, body, closed := exchangeRaw(t, gw.Addr, tt.raw)
			if resp.StatusCode != tt.status || !strings.Contains(body, `"message"`) {
				t.Errorf("client got %d %q, want %d with a JSON message", resp.StatusCode, body, tt.status)
			}
			if !closed {
				t.Errorf("connection left open after a %d", resp.StatusCode)
			}
			if got := up.received(); got != before {
				t.Errorf("upstream received %q, want nothing", got[len(before):])
			}
		})
	}
}

func TestSlowBodyReleasesUpstream(t *testing.T) {
	up := newRecorder(t)
	svc := serviceFor(t, "http://"+up.addr)
	streamed := route("s", []string{"/s"}, true, svc)
	_, gw := gateway(t, Options{BodyTimeout: 300 * time.Millisecond}, streamed)
	for _, tt := range []struct {
		name         string
		length, sent int
	}{
		// Within the 8 KiB fasthttp reads ahead: refused before routing.
		{"within the read-ahead", 10, 3},
		// Past it: the body was streaming upstream when it stalled.
		{"streaming", 20000, 12000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			head := fmt.Sprintf("POST /s/ HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tt.length)
			resp, _, closed := exchangeRaw(t, gw.Addr, head+strings.Repeat("a", tt.sent))
			if resp.StatusCode != http.StatusRequestTimeout || !closed {
				t.Fatalf("client got %d (closed %v), want 408 and a closed connection", resp.StatusCode, closed)
			}
			deadline := time.Now().Add(3 * time.Second)
			for up.openConns() > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := up.openConns(); n > 0 {
				t.Fatalf("%d upstream connections still open after the client's body timeout", n)
			}
			up.mu.Lock()
			complete := up.complete
			up.mu.Unlock()
			if complete != 0 {
				t.Fatalf("the upstream received %d complete requests from a body cut at %d of %d bytes", complete, tt.sent, tt.length)
			}
		})
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	upgrader := websocket.Upgrader{}
	var sawUpgrade atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawUpgrade.Store(strings.EqualFold(r.Header.Get("Upgrade"), "websocket"))
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(kind, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	_, gw := gateway(t, Options{}, route("ws", []string{"/ws"}, true, serviceFor(t, up.URL)))
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+gw.Addr+"/ws/chat", nil)
	if err != nil {
		t.Fatalf("dial through the proxy: %v (response %v)", err, resp)
	}
	defer c.Close()
	if !sawUpgrade.Load() {
		t.Fatal("the upstream did not see Upgrade: websocket")
	}
	for i, m := range []struct {
		kind int
		data string
	}{{websocket.TextMessage, "hello"}, {websocket.BinaryMessage, "\x00\x01\x02"}, {websocket.TextMessage, "bye"}} {
		if err := c.WriteMessage(m.kind, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		kind, got, err := c.ReadMessage()
		if err != nil || kind != m.kind || string(got) != "echo:"+m.data {
			t.Fatalf("message %d: got %d %q %v, want %d %q", i, kind, got, err, m.kind, "echo:"+m.data)
		}
	}
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
}

// wrapConn is another package's connection wrapper (the node's counting
// listener) that exposes what it wraps.
type wrapConn struct{ net.Conn }

func (w wrapConn) NetConn() net.Conn { return w.Conn }

// TestTCPConnUnwraps checks that the client watch reaches the TCP
// connection under every wrapper that exposes NetConn, and gives up on one
// that does not.
func TestTCPConnUnwraps(t *testing.T) {
	up := newRecorder(t)
	c, err := net.Dial("tcp", up.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wrapped := wrapConn{&deadlineConn{Conn: c}}
	if got := tcpConn(wrapped); got != c {
		t.Fatalf("tcpConn(wrapped) = %v, want the TCP connection", got)
	}
	if got := tcpConn(struct{ net.Conn }{c}); got != nil {
		t.Fatalf("tcpConn of an opaque wrapper = %v, want nil", got)
	}
}

// TestBufferedBodySpoolsToFile sends bodies larger than the memory buffer
// through a buffered route (the rest goes to a temporary file) and a
// streamed one: the upstream gets each byte for byte, with its length.
func TestBufferedBodySpoolsToFile(t *testing.T) {
	up := echo(t)
	svc := serviceFor(t, up.URL)
	buffered := route("b", []string{"/b"}, true, svc)
	buffered.Route.RequestBuffering = true
	_, gw := gateway(t, Options{BodyBufferSize: 1 << 10}, buffered, route("s", []string{"/s"}, true, svc))
	body := strings.Repeat("0123456789abcdef", 6<<10) // 96 KiB
	for _, path := range []string{"/b/x", "/s/x"} {
		for _, chunked := range []bool{false, true} {
			var r io.Reader = strings.NewReader(body)
			if chunked {
				r = io.MultiReader(r) // hides the length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, gw.URL+path, r)
			resp, got := get(t, req)
			var e echoed
			if err := json.Unmarshal([]byte(got), &e); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s chunked=%v: %d %q", path, chunked, resp.StatusCode, got)
			}
			if e.Body != body {
				t.Fatalf("%s chunked=%v: upstream got %d bytes, want %d, the same", path, chunked, len(e.Body), len(body))
			}
		}
	}
}
