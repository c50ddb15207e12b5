package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"net/textproto"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// smallBody is the largest response body read whole at once; longer ones,
// and those of unknown length, stream to the client.
const smallBody = 64 << 10

// errClientGone marks an upstream call ended because the client went away.
var errClientGone = errors.New("proxy: the client closed its connection while the upstream was answering")

// send makes one upstream try on a connection from hc's pool: write the
// request, read the response head, and hand the body over, whole when it
// is small and of known length, else as a stream that gives the
// connection back when the server has written it. fasthttp's HostClient.Do
// does the same, but it holds the connection where a client that goes away
// cannot reach it: here the exchange holds it (clientWatch.hold), so that
// the watch can close it when the client goes away.
func (p *Proxy) send(x *exchange, hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) error {
	cc, err := hc.AcquireConn(millis(x.match.Service.ConnectTimeout, 60000), false)
	if err != nil {
		return err
	}
	conn := cc.Conn()
	reused := markUse(conn)
	// A request that cannot go twice must not meet a pooled connection
	// the upstream has closed meanwhile: look first (without waiting).
	for tries := 0; reused && !x.replayable() && tries < 4; tries++ {
		if _, closed := peekNow(tcpConn(conn)); !closed {
			break
		}
		hc.CloseConn(cc)
		if cc, err = hc.AcquireConn(millis(x.match.Service.ConnectTimeout, 60000), false); err != nil {
			return err
		}
		conn = cc.Conn()
		reused = markUse(conn)
	}
	if !x.watch.hold(conn) {
		hc.CloseConn(cc)
		return errClientGone
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil && !answeredEarly(x, conn) {
		x.watch.release()
		hc.CloseConn(cc)
		return staleOr(err, reused)
	}
	wrote := err == nil
	br := hc.AcquireReader(conn)
	resp.Reset()
	resp.Header.SetNoDefaultContentType(true)
	err = readHead(resp, br)
	x.watch.release()
	if err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return staleOr(err, reused)
	}
	status := resp.StatusCode()
	if status == fasthttp.StatusSwitchingProtocols && x.upgrading {
		x.upgraded = &upgradedConn{conn: conn, br: br, release: func() { hc.ReleaseReader(br); hc.CloseConn(cc) }}
		return nil
	}
	keep := wrote && !resp.ConnectionClose() && !req.ConnectionClose() && status != fasthttp.StatusSwitchingProtocols
	cl := resp.Header.ContentLength()
	if req.Header.IsHead() || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		resp.SkipBody = true
		cl = 0
	}
	if cl >= 0 && cl <= smallBody {
		if cl > 0 {
			err = resp.ReadBody(br, 0)
		}
		hc.ReleaseReader(br)
		if err == nil && keep {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
		return err
	}
	body := newUpstreamBody(hc.ReleaseConn, hc.CloseConn, cc, func() { hc.ReleaseReader(br) })
	body.keep = keep
	switch {
	case cl >= 0:
		body.r, body.left = io.LimitReader(br, int64(cl)), int64(cl)
		resp.SetBodyStream(body, cl)
	case cl == -1:
		body.r, body.chunked, body.br = httputil.NewChunkedReader(br), true, br
		resp.SetBodyStream(body, -1)
	default: // no length: the body ends with the connection
		body.r, body.keep = br, false
		resp.SetBodyStream(body, -1)
	}
	return nil
}

// answeredEarly reports whether the upstream answered a request it did not
// read to the end (a 413 before a large upload): the write failed, not
// because of the client's body, and the answer is already waiting.
func answeredEarly(x *exchange, conn net.Conn) bool {
	if x.body.err != nil {
		return false
	}
	data, _ := peekNow(tcpConn(conn))
	return data
}

// readHead reads the response head, skipping interim 1xx responses other
// than 101.
func readHead(resp *fasthttp.Response, br *bufio.Reader) error {
	for range 10 {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		if s := resp.StatusCode(); s >= 200 || s < 100 || s == fasthttp.StatusSwitchingProtocols {
			return nil
		}
	}
	return errors.New("proxy: too many interim responses from the upstream")
}

// staleErr marks a pooled connection the upstream had closed before it
// answered: an idempotent request may go again, free of service.retries.
type staleErr struct{ err error }

func (e *staleErr) Error() string { return e.err.Error() }
func (e *staleErr) Unwrap() error { return e.err }

// staleOr wraps err in staleErr when it says that a reused connection was
// closed by the upstream before any answer.
func staleOr(err error, reused bool) error {
	if reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
		return &staleErr{err}
	}
	return err
}

// isReset reports whether err is a connection reset or broken pipe.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// upstreamBody streams a response body to the client and returns the
// connection to the pool when the server closes it after writing, or
// closes the connection when the body was not read to its end. C is
// fasthttp's pooled connection type, which is not exported.
type upstreamBody[C any] struct {
	release, close func(C)
	cc             C
	freeReader     func()
	br             *bufio.Reader // for chunked bodies' trailers
	r              io.Reader
	left           int64 // bytes still expected, for Content-Length bodies
	chunked        bool
	keep           bool // the connection may be reused once the body is read
	eof            bool
	once           sync.Once
}

func newUpstreamBody[C any](release, close func(C), cc C, freeReader func()) *upstreamBody[C] {
	return &upstreamBody[C]{release: release, close: close, cc: cc, freeReader: freeReader}
}

func (b *upstreamBody[C]) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		if b.chunked {
			// The trailer section ends the body; it is not forwarded.
			if _, terr := textproto.NewReader(b.br).ReadMIMEHeader(); terr != nil && terr != io.EOF {
				b.keep = false
			}
		} else if b.left > 0 {
			b.keep = false
			return n, io.ErrUnexpectedEOF
		}
		b.eof = true
	}
	return n, err
}

// Close implements io.Closer; fasthttp calls it when the response is
// written, or failed.
func (b *upstreamBody[C]) Close() error {
	b.once.Do(func() {
		b.freeReader()
		if b.eof && b.keep {
			b.release(b.cc)
		} else {
			b.close(b.cc)
		}
	})
	return nil
}

// markUse counts a use of an upstream connection and reports whether it
// was used before.
func markUse(c net.Conn) bool {
	dc, ok := unwrap[*deadlineConn](c)
	if !ok {
		return false
	}
	dc.uses++
	return dc.uses > 1
}

// watchDelay is how long an upstream call runs before the client's
// connection is watched for a close: shorter calls are not worth a
// goroutine.
const watchDelay = 100 * time.Millisecond
