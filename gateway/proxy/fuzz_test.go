package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/router"
)

// FuzzRequestFraming sends arbitrary bytes to a real proxy in front of a raw-socket upstream, and checks the
// smuggling invariant: whatever the client sent, the bytes each upstream
// connection received parse as whole HTTP/1.1 requests, each with the body
// its framing announced, and nothing else. The one exception is a route
// without request_buffering (/s), where a body that breaks mid-way has
// already partly left: its connection must then end right there, so that
// the upstream never sees a complete request made of it.
func FuzzRequestFraming(f *testing.F) {
	for _, seed := range []string{
		"GET /b/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /b/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST /s/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /b/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /s/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
		"POST /b/ HTTP/1.1\r\nHost: x\r\nX: 1\r\n folded\r\nContent-Length: 1\r\n\r\na",
		"GET /b/ HTTP/1.1\r\nHost: x\r\n\r\nGET /s/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /b/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	up := newRecorder(f)
	svc := serviceFor(f, "http://"+up.addr)
	buffered := route("b", []string{"/b"}, true, svc)
	buffered.Route.RequestBuffering = true
	p := New(Options{MaxBodySize: 1 << 10, BodyTimeout: 100 * time.Millisecond, HeaderTimeout: 100 * time.Millisecond,
		KeepaliveTimeout: 50 * time.Millisecond})
	rt := mustRouter(f, buffered, route("s", []string{"/s"}, true, svc))
	p.SetRouter(rt)
	gw := serve(f, p)

	f.Fuzz(func(t *testing.T, raw []byte) {
		before := up.connCount()
		c, err := net.Dial("tcp", gw.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Write(raw)
		_ = c.(*net.TCPConn).CloseWrite() // the proxy answers what it got, then sees the end
		_, _ = io.Copy(io.Discard, c)     // until the proxy closes or the deadline
		_ = c.Close()
		// The recorder reads asynchronously: close the pooled upstream
		// connections and wait until it has read them to the end.
		p.CloseIdleConnections()
		for deadline := time.Now().Add(2 * time.Second); up.openConns() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		for _, got := range up.connsSince(before) {
			checkWholeRequests(t, got)
		}
	})
}

// checkWholeRequests fails unless got is a sequence of complete requests,
// each framed by one Content-Length or chunked coding. It checks framing
// only: the target and header values may be anything a client sent.
func checkWholeRequests(t *testing.T, got string) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(got))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return
		}
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			if rest, _ := io.ReadAll(br); len(rest) == 0 && strings.Contains(got, "X-Forwarded-Prefix: /s\r\n") && isLastRequestCut(got) {
				return // a streamed body cut short, and the connection closed
			}
			t.Fatalf("upstream received bytes that are not a whole request: %v\n%.2000q", err, got)
		}
		if n := req.Header.ContentLength(); n >= 0 && len(req.Body()) != n {
			t.Fatalf("upstream body %d bytes, Content-Length %d", len(req.Body()), n)
		}
	}
}

// FuzzKitHeaders drives the kit's header paths with arbitrary names and
// values: what a plugin sets on the upstream request or the response is
// what it reads back, and nothing panics.
func FuzzKitHeaders(f *testing.F) {
	f.Add("X-Consumer-Id", "c1", "apikey", "k")
	f.Add("x-weird_name", "v\x00", "Content-Type", "text/plain")
	f.Add("", "", "Host", "h")
	p := New(Options{})
	f.Cleanup(p.Close)
	f.Fuzz(func(t *testing.T, name, value, other, otherValue string) {
		if !validName(name) || !validValue(value) || !validName(other) || !validValue(otherValue) {
			return
		}
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		req.SetRequestURI("/x?a=1")
		req.Header.SetHost("h")
		ctx.Init(&req, nil, nil)
		x := newExchange(p)
		x.begin(&ctx)
		c := &x.pc
		c.Upstream.SetHeader(name, value)
		if got, ok := c.Request.Header(name); isSpecial(name) || !ok || got != value {
			if !isSpecial(name) {
				t.Fatalf("upstream header %q = %q %v, want %q", name, got, ok, value)
			}
		}
		c.Response.SetHeader(other, otherValue)
		if got, ok := c.Response.Header(other); !ok || got != otherValue {
			t.Fatalf("pending response header %q = %q %v, want %q", other, got, ok, otherValue)
		}
		c.Response.ClearHeader(other)
		if _, ok := c.Response.Header(other); ok {
			t.Fatalf("response header %q still set after ClearHeader", other)
		}
		c.ExitMessage(403, value)
		if status, body, ok := c.Exited(); !ok || status != 403 || !bytes.HasSuffix(body, []byte("\n")) {
			t.Fatalf("Exited() = %d %q %v", status, body, ok)
		}
		x.reset()
	})
}

// isLastRequestCut reports whether the last request in got is the one
// whose body is incomplete: it belongs to the streaming route.
func isLastRequestCut(got string) bool {
	i := strings.LastIndex(got, "X-Forwarded-Prefix: ")
	return i >= 0 && strings.HasPrefix(got[i:], "X-Forwarded-Prefix: /s\r\n")
}

func mustRouter(t testing.TB, targets ...router.Target) *router.Router {
	rt, err := router.New(targets)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// validName reports whether s is an RFC 9110 field name (a token).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// validValue reports whether s is a field value without surrounding
// whitespace.
func validValue(s string) bool {
	if s != strings.TrimSpace(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// isSpecial reports whether fasthttp keeps header name apart from the
// others (framing, Host, cookies), so that it is not read back as set.
func isSpecial(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-type", "content-length", "user-agent", "connection", "transfer-encoding", "cookie", "trailer":
		return true
	}
	return false
}

// TestKitQueryAfterEdit checks that Request.Query reads a query a plugin
// replaced with Upstream.SetRawQuery, as upstream edits are made in place.
func TestKitQueryAfterEdit(t *testing.T) {
	p := New(Options{})
	t.Cleanup(p.Close)
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.SetRequestURI("/x?apikey=k&a=1")
	ctx.Init(&req, nil, nil)
	x := newExchange(p)
	x.begin(&ctx)
	if v, ok := x.pc.Request.Query("apikey"); !ok || v != "k" {
		t.Fatalf("Query(apikey) = %q %v before the edit", v, ok)
	}
	x.pc.Upstream.SetRawQuery("a=2")
	if _, ok := x.pc.Request.Query("apikey"); ok {
		t.Fatal("Query(apikey) still found after SetRawQuery removed it")
	}
	if v, _ := x.pc.Request.Query("a"); v != "2" || x.pc.Request.RawQuery() != "a=2" {
		t.Fatalf("Query(a) = %q, RawQuery %q after the edit", v, x.pc.Request.RawQuery())
	}
}
