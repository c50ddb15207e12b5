package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// h1Client sends HTTP/1.1 requests to plain-HTTP upstreams on the calling
// goroutine: it writes the request, reads the response head and hands the
// body to the caller; the connection goes back to the pool when the body
// reaches EOF. net/http's Transport runs a read and a write goroutine per
// connection and passes every request through channels to them; at a
// proxy's request rate those hand-offs cost more CPU than the rest of the
// gateway (bench/RESULTS.md, "Proxy CPU per request").
//
// It implements http.RoundTripper for the requests the proxy builds (URL
// with Opaque path, Host set, hop-by-hop headers removed); it is not a
// general client: no proxies, no TLS, no compression, no redirects.
type h1Client struct {
	// All durations must be positive: every read and write sets its
	// deadline, so none is left over from the connection's previous use.
	dialer       net.Dialer
	writeTimeout time.Duration // between two writes, Kong's write_timeout
	readTimeout  time.Duration // between two reads, Kong's read_timeout
	maxIdle      int           // idle connections kept per address
	idleTimeout  time.Duration
	bufs         *sync.Pool // *[]byte of bufSize, for request bodies

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by dial address, most recently used last
	reaper *time.Timer          // armed while idle connections exist
}

type h1Conn struct {
	net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// errReusedConnClosed marks a pooled connection the upstream had closed
// before the request reached it: the request may be sent again.
var errReusedConnClosed = errors.New("proxy: upstream closed an idle keep-alive connection")

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip implements http.RoundTripper.
func (cl *h1Client) RoundTrip(req *http.Request) (*http.Response, error) {
	addr := req.URL.Host
	resend := replayable(req)
	for {
		pc, reused, err := cl.conn(req.Context(), addr, !resend)
		if err != nil {
			return nil, err
		}
		resp, err := cl.send(pc, req)
		if err == nil {
			return resp, nil
		}
		pc.Close()
		if !reused || !resend || !errors.Is(err, errReusedConnClosed) {
			return nil, err
		}
		// The upstream closed the pooled connection before reading the
		// request: send it again, on a new connection if need be.
	}
}

// send writes req on pc and reads the response head. On error the caller
// closes pc.
func (cl *h1Client) send(pc *h1Conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	stop := func() bool { return true }
	if ctx.Done() != nil {
		// A client that goes away interrupts the upstream call at once.
		stop = context.AfterFunc(ctx, func() { _ = pc.SetDeadline(aLongTimeAgo) })
	}
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	werr := cl.writeRequest(pc, req)
	if werr != nil && (ctx.Err() != nil || !answeredEarly(pc)) {
		if isConnReset(werr) {
			werr = fmt.Errorf("%w: %w", errReusedConnClosed, werr)
		}
		return fail(werr)
	}
	for {
		_ = pc.SetReadDeadline(time.Now().Add(cl.readTimeout))
		if _, err := pc.br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err) {
				err = fmt.Errorf("%w: %w", errReusedConnClosed, err)
			}
			return fail(err)
		}
		resp, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // interim responses (100 Continue, 103 Early Hints) are not forwarded
		}
		reuse := werr == nil && !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols
		b := &h1Body{rc: resp.Body, pc: pc, cl: cl, addr: req.URL.Host, reuse: reuse, stop: stop}
		if resp.Body == http.NoBody {
			b.finish(true)
			return resp, nil
		}
		resp.Body = b
		return resp, nil
	}
}

// answeredEarly reports whether the upstream, having stopped taking the
// request body, sent a response (a 413, a redirect) that should be
// forwarded rather than the write error.
func answeredEarly(pc *h1Conn) bool {
	_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := pc.br.Peek(1)
	return err == nil
}

// writeRequest writes req in origin form, framing its body with
// Content-Length when known and chunked otherwise.
func (cl *h1Client) writeRequest(pc *h1Conn, req *http.Request) error {
	_ = pc.SetWriteDeadline(time.Now().Add(cl.writeTimeout))
	w := pc.bw
	uri := req.URL.Opaque
	if uri == "" {
		uri = req.URL.EscapedPath()
	}
	if uri == "" {
		uri = "/"
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(uri)
	if req.URL.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(req.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	writeHeaderValue(w, host)
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Expect":
			// Framing is ours; 100-continue was answered by our server.
			continue
		}
		for _, v := range vv {
			w.WriteString(k)
			w.WriteString(": ")
			writeHeaderValue(w, v)
			w.WriteString("\r\n")
		}
	}
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	chunked := false
	switch {
	case body != nil && req.ContentLength < 0:
		chunked = true
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case req.ContentLength > 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n")
	}
	w.WriteString("\r\n")
	if body != nil {
		if err := cl.writeBody(pc, body, chunked); err != nil {
			return err
		}
	}
	return w.Flush()
}

// writeBody copies the request body to the upstream, refreshing the write
// deadline before each chunk.
func (cl *h1Client) writeBody(pc *h1Conn, body io.Reader, chunked bool) error {
	bp := cl.bufs.Get().(*[]byte)
	defer cl.bufs.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			_ = pc.SetWriteDeadline(time.Now().Add(cl.writeTimeout))
			if chunked {
				pc.bw.WriteString(strconv.FormatInt(int64(n), 16))
				pc.bw.WriteString("\r\n")
			}
			pc.bw.Write(buf[:n])
			if chunked {
				pc.bw.WriteString("\r\n")
			}
			if err := pc.bw.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("proxy: reading the request body: %w", rerr)
		}
	}
	if chunked {
		pc.bw.WriteString("0\r\n\r\n")
	}
	return nil
}

// writeHeaderValue writes v with CR and LF replaced by spaces, as net/http
// does, so that no value can start a header of its own upstream.
func writeHeaderValue(w *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\r\n") {
		w.WriteString(v)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.WriteByte(c)
	}
}

// conn returns an idle connection to addr, or dials one. mustProbe checks
// an idle connection for a close by the upstream however briefly it idled.
func (cl *h1Client) conn(ctx context.Context, addr string, mustProbe bool) (pc *h1Conn, reused bool, err error) {
	now := time.Now()
	cl.mu.Lock()
	for conns := cl.idle[addr]; len(conns) > 0; conns = cl.idle[addr] {
		pc = conns[len(conns)-1]
		conns[len(conns)-1] = nil
		cl.idle[addr] = conns[:len(conns)-1]
		idle := now.Sub(pc.idleSince)
		if idle >= cl.idleTimeout {
			pc.Close()
			continue
		}
		cl.mu.Unlock()
		if (idle < probeAfter && !mustProbe) || pc.alive() {
			return pc, true, nil
		}
		pc.Close()
		cl.mu.Lock()
	}
	cl.mu.Unlock()
	c, err := cl.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{Conn: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

// put returns pc to the idle pool, or closes it when the pool is full.
func (cl *h1Client) put(addr string, pc *h1Conn) {
	pc.idleSince = time.Now()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.idle == nil {
		cl.idle = map[string][]*h1Conn{}
	}
	if len(cl.idle[addr]) >= cl.maxIdle {
		pc.Close()
		return
	}
	cl.idle[addr] = append(cl.idle[addr], pc)
	if cl.reaper == nil {
		cl.reaper = time.AfterFunc(cl.idleTimeout, cl.reap)
	}
}

// reap closes the connections idle for longer than idleTimeout, and
// re-arms itself while idle connections remain.
func (cl *h1Client) reap() {
	now := time.Now()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	left := 0
	for addr, conns := range cl.idle {
		kept := conns[:0]
		for _, pc := range conns {
			if now.Sub(pc.idleSince) >= cl.idleTimeout {
				pc.Close()
				continue
			}
			kept = append(kept, pc)
		}
		clear(conns[len(kept):])
		if len(kept) == 0 {
			delete(cl.idle, addr)
		} else {
			cl.idle[addr] = kept
		}
		left += len(kept)
	}
	cl.reaper = nil
	if left > 0 {
		cl.reaper = time.AfterFunc(cl.idleTimeout, cl.reap)
	}
}

// CloseIdleConnections closes every idle connection.
func (cl *h1Client) CloseIdleConnections() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for addr, conns := range cl.idle {
		for _, pc := range conns {
			pc.Close()
		}
		delete(cl.idle, addr)
	}
	if cl.reaper != nil {
		cl.reaper.Stop()
		cl.reaper = nil
	}
}

// h1Body is a response body that returns its connection to the pool when
// read to the end, and closes it when closed before.
type h1Body struct {
	rc    io.ReadCloser
	pc    *h1Conn
	cl    *h1Client
	addr  string
	reuse bool
	stop  func() bool // releases the context watch; false if it fired
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	_ = b.pc.SetReadDeadline(time.Now().Add(b.cl.readTimeout))
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

// finish releases the connection: back to the pool when the response was
// read whole and the connection may be reused, closed otherwise.
func (b *h1Body) finish(whole bool) {
	b.done = true
	watching := b.stop()
	if whole && b.reuse && watching && b.pc.br.Buffered() == 0 {
		b.cl.put(b.addr, b.pc)
		return
	}
	b.pc.Close()
}

// replayable reports whether req may be sent again after the upstream
// closed a reused connection: it has no body to send again and its method
// is idempotent, as net/http's Transport decides.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// isConnReset reports whether err is the peer resetting the connection.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// probeAfter is how long a connection may sit idle before it is checked
// for a close by the upstream when taken from the pool. Upstreams close
// idle keep-alive connections after seconds (nginx 75 s, Node 5 s), so a
// connection used within the last second is taken as it is for a request
// that can be sent again if it turns out closed; other requests always
// check (one non-blocking recv).
const probeAfter = time.Second
