package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawClient is a client connection to the proxy that writes bytes as
// given and reads answers with net/http's parser.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, br: bufio.NewReader(c)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// get sends a GET for path and returns the answer's status and body.
func (c *rawClient) get(path string) (int, string) {
	c.t.Helper()
	c.send("GET " + path + " HTTP/1.1\r\nHost: gw\r\n\r\n")
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// closedWithin waits up to d for the proxy to close the connection and
// returns how long that took; ok is false when it was still open.
func (c *rawClient) closedWithin(d time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.conn.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, c.br) // a 408 may come first
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

// TestClientTimeouts checks the head and keep-alive timeouts that
// clientConn applies lazily: a connection busy with requests for several
// times both timeouts is never cut, an idle one is closed after
// keepalive_timeout (within 9/8 of it), and a head trickled in bytes that
// each arrive in time is cut when the head's whole timeout has passed.
func TestClientTimeouts(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	const head, idle = 400 * time.Millisecond, 300 * time.Millisecond
	_, gw := gateway(t, Options{HeaderTimeout: head, KeepaliveTimeout: idle}, route("r", []string{"/"}, false, serviceFor(t, up.URL)))

	busy := dialRaw(t, gw.Addr)
	for n, start := 0, time.Now(); time.Since(start) < 4*head; n++ {
		if n > 0 {
			time.Sleep(idle / 10)
		}
		if status, body := busy.get("/busy"); status != 200 || body != "ok" {
			t.Fatalf("request %d on a busy connection: %d %q, want 200 \"ok\"", n, status, body)
		}
	}
	took, closed := busy.closedWithin(3 * idle) // from the last answer
	switch {
	case !closed:
		t.Errorf("idle connection still open %v after its last answer, want closed after keepalive_timeout %v", took, idle)
	case took < idle-coarseTick:
		t.Errorf("idle connection closed after %v, before keepalive_timeout %v", took, idle)
	}

	trickle := dialRaw(t, gw.Addr)
	start := time.Now()
	var cut time.Duration
	for _, b := range []byte("GET /slow HTTP/1.1\r\nHost: gw\r\nX-Pad: " + strings.Repeat("p", 40)) {
		if _, err := trickle.conn.Write([]byte{b}); err != nil {
			cut = time.Since(start)
			break
		}
		time.Sleep(head / 20)
	}
	if cut == 0 {
		took, closed := trickle.closedWithin(head)
		if !closed {
			t.Fatalf("a head trickled for %v was not cut, want cut after client_header_timeout %v", time.Since(start), head)
		}
		cut = time.Since(start) - took/2
	}
	if limit := head*9/8 + 3*coarseTick + head/20; cut > limit+100*time.Millisecond {
		t.Errorf("a trickled head was cut after %v, want about client_header_timeout %v (at most %v)", cut, head, limit)
	}
}

// TestKeepAliveAfterWatchedCall makes a call long enough for the client
// watch to start (it interrupts its peek with a past read deadline when
// the call ends), then another request on the same connection: the
// interrupt's deadline must not cut the kept-alive connection.
func TestKeepAliveAfterWatchedCall(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchDelay)
		}
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer up.Close()
	_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, serviceFor(t, up.URL)))
	c := dialRaw(t, gw.Addr)
	for _, path := range []string{"/slow", "/next", "/slow", "/next"} {
		if status, body := c.get(path); status != 200 || body != "ok "+path {
			t.Fatalf("GET %s on the kept-alive connection: %d %q, want 200 \"ok %s\"", path, status, body, path)
		}
	}
}
