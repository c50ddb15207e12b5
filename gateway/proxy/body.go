package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Errors reading from the client. Each becomes its own status, log line
// and metric reason (reasonOf); none is ever reported as the upstream's.
var (
	errFraming  = fmt.Errorf("malformed request framing: %w", plugins.ErrClientBody)
	errTimeout  = fmt.Errorf("client_body_timeout expired between two reads of the body: %w", plugins.ErrClientBody)
	errClosed   = fmt.Errorf("client closed the connection before the end of the body: %w", plugins.ErrClientBody)
	errTooLarge = fmt.Errorf("body exceeds client_max_body_size: %w", plugins.ErrBodyTooLarge)
)

// bodyState says where a request body is.
type bodyState uint8

const (
	bodyNone      bodyState = iota // no body (length 0)
	bodyUnread                     // still on the connection
	bodyBuffered                   // read: in mem, then file
	bodyStreaming                  // handed to the upstream request as a stream
	bodyReplaced                   // a plugin set another body
)

// clientBody reads a request's body from the client: all of it before the
// upstream is contacted (request_buffering, the default, and whenever a
// plugin asks for it), or as a stream the upstream request pulls. Every
// read has client_body_timeout, and client_max_body_size bounds the total,
// chunked bodies included. The first error is kept, so that a failure the
// upstream client sees while pulling the stream is known to be the
// client's.
type clientBody struct {
	x      *exchange
	ctx    *fasthttp.RequestCtx
	state  bodyState
	length int64     // declared: -1 chunked
	stream io.Reader // the server's body stream
	n      int64     // bytes received
	mem    []byte    // the first bytes (all of them unless spooled)
	file   *os.File  // the rest, when mem is full
	eof    bool      // the whole body was read
	err    error
}

// begin notes the body of the request in ctx.
func (b *clientBody) begin(ctx *fasthttp.RequestCtx) {
	b.ctx = ctx
	b.length = int64(ctx.Request.Header.ContentLength())
	switch {
	case b.length == -2 || b.length == 0:
		b.length, b.state = 0, bodyNone
	default:
		b.state = bodyUnread
		b.stream = ctx.RequestBodyStream()
	}
}

// reset drops the body, keeping a small memory buffer for the next
// request.
func (b *clientBody) reset() {
	b.dropFile()
	mem := b.mem[:0]
	if cap(mem) > 64<<10 {
		mem = nil
	}
	*b = clientBody{x: b.x, mem: mem}
}

// declared returns the declared length: -1 when chunked, 0 for none.
func (b *clientBody) declared() int64 {
	if b.state == bodyReplaced || b.state == bodyBuffered {
		return b.n
	}
	return b.length
}

// received returns the bytes read from the client so far, or the declared
// length of a streamed body.
func (b *clientBody) received() int64 {
	if b.state == bodyStreaming && b.length > 0 {
		return b.length
	}
	return b.n
}

// tooLarge reports whether the declared length is over
// client_max_body_size.
func (b *clientBody) tooLarge() bool {
	limit := b.x.p.opts.MaxBodySize
	return limit > 0 && b.length > limit
}

// Read implements io.Reader for the upstream request in streaming mode.
func (b *clientBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.length > 0 && b.n >= b.length {
		b.eof = true
		return 0, io.EOF
	}
	_ = b.ctx.SetReadDeadline(b.x.p.clock.Now().Add(b.x.p.opts.BodyTimeout + coarseTick))
	n, err := b.stream.Read(p)
	b.n += int64(n)
	if limit := b.x.p.opts.MaxBodySize; limit > 0 && b.n > limit {
		b.err = errTooLarge
		return 0, b.err
	}
	if err == io.EOF {
		if b.length > 0 && b.n < b.length {
			b.err = errClosed
			return n, b.err
		}
		b.eof = true
		return n, io.EOF
	}
	if err != nil {
		b.err = classify(err)
		return n, b.err
	}
	return n, nil
}

// bufferAll reads the whole body: the first memLimit bytes into memory,
// the rest into a temporary file.
func (b *clientBody) bufferAll(memLimit int) error {
	if b.state != bodyUnread {
		return b.err
	}
	b.state = bodyBuffered
	if b.length > 0 && b.length <= int64(memLimit) {
		memLimit = int(b.length)
	}
	var chunk [32 << 10]byte
	for {
		n, err := b.Read(chunk[:])
		if n > 0 {
			if werr := b.keep(chunk[:n], memLimit); werr != nil {
				b.err = werr
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// dropFile removes the temporary file of a spooled body, if any.
func (b *clientBody) dropFile() {
	if b.file == nil {
		return
	}
	_ = b.file.Close()
	_ = os.Remove(b.file.Name())
	b.file = nil
}

// keep stores p after what was read before.
func (b *clientBody) keep(p []byte, memLimit int) error {
	if room := memLimit - len(b.mem); room > 0 && b.file == nil {
		k := min(room, len(p))
		b.mem = append(b.mem, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return nil
	}
	if b.file == nil {
		f, err := os.CreateTemp("", "sluice-body-*")
		if err != nil {
			return fmt.Errorf("proxy: cannot spool a request body (client_body_buffer_size): %w", err)
		}
		b.file = f
	}
	if _, err := b.file.Write(p); err != nil {
		return fmt.Errorf("proxy: cannot spool a request body: %w", err)
	}
	return nil
}

// readAll implements plugins.Request.Body.
func (b *clientBody) readAll(limit int64) ([]byte, error) {
	switch b.state {
	case bodyNone:
		return nil, nil
	case bodyReplaced:
		if int64(len(b.mem)) > limit {
			return nil, plugins.ErrBodyTooLarge
		}
		return b.mem, nil
	case bodyStreaming:
		return nil, errors.New("proxy: the request body is already streaming upstream")
	case bodyUnread:
		if b.tooLarge() {
			b.err = errTooLarge
			return nil, b.err
		}
		memLimit := max(int64(b.x.p.opts.BodyBufferSize), min(limit+1, 1<<30))
		if err := b.bufferAll(int(memLimit)); err != nil {
			if errors.Is(err, plugins.ErrClientBody) || errors.Is(err, errTooLarge) {
				b.x.clientErr = err
			}
			return nil, err
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	if b.n > limit {
		return nil, fmt.Errorf("proxy: body of %d bytes is over the %d asked for: %w", b.n, limit, plugins.ErrBodyTooLarge)
	}
	if b.file != nil { // limit above memory: bring the spooled part in
		inMem := len(b.mem)
		b.mem = slices.Grow(b.mem, int(b.n)-inMem)[:b.n]
		if _, err := b.file.ReadAt(b.mem[inMem:], 0); err != nil {
			return nil, fmt.Errorf("proxy: cannot read a spooled request body: %w", err)
		}
		b.dropFile()
	}
	return b.mem, nil
}

// replace implements plugins.Upstream.SetBody. A body still on the
// connection is read first (and dropped), so that the connection stays
// usable and the client's errors are still caught.
func (b *clientBody) replace(p []byte) {
	if b.state == bodyUnread {
		if err := b.bufferAll(b.x.p.opts.BodyBufferSize); err != nil {
			b.x.clientErr = err
			return
		}
	}
	b.dropFile()
	b.mem = append(b.mem[:0], p...)
	b.n = int64(len(p))
	b.state = bodyReplaced
}

// attach sets the body on the upstream request: buffered (reading it all
// first) or streamed, as the route's request_buffering says.
func (b *clientBody) attach(req *fasthttp.Request, buffer bool) error {
	if b.state == bodyUnread && b.tooLarge() {
		return errTooLarge
	}
	if b.state == bodyUnread && buffer {
		if err := b.bufferAll(b.x.p.opts.BodyBufferSize); err != nil {
			return err
		}
	}
	switch b.state {
	case bodyNone:
	case bodyUnread:
		b.state = bodyStreaming
		req.SetBodyStream(b, int(b.length))
	case bodyBuffered, bodyReplaced:
		if b.file == nil {
			req.SetBodyRaw(b.mem)
			req.Header.SetContentLength(len(b.mem))
			break
		}
		req.SetBodyStream(io.MultiReader(bytes.NewReader(b.mem), io.NewSectionReader(b.file, 0, b.n-int64(len(b.mem)))), int(b.n))
	}
	return nil
}

// unfinished reports whether a body streaming upstream is still partly on
// the client's connection (the upstream answered before taking it all).
func (b *clientBody) unfinished() bool {
	return b.state == bodyStreaming && !b.eof && b.err == nil
}

// linger reads and drops what is left of a body the upstream did not take,
// for at most lingerTime, after the answer is out: closing a connection
// with unread bytes resets it, and the client may then lose the answer
// (nginx's lingering_close).
func linger(ctx *fasthttp.RequestCtx, stream io.Reader) {
	end := time.Now().Add(lingerTime)
	buf := make([]byte, 16<<10)
	for time.Now().Before(end) {
		next := time.Now().Add(lingerTimeout)
		if next.After(end) {
			next = end
		}
		_ = ctx.SetReadDeadline(next)
		if _, err := stream.Read(buf); err != nil {
			return
		}
	}
}

// nginx's lingering_time and lingering_timeout.
const lingerTime, lingerTimeout = 30 * time.Second, 5 * time.Second

// replayable reports whether the body can be sent again on a retry.
func (b *clientBody) replayable() bool {
	return b.state != bodyStreaming && b.file == nil
}

// classify maps an error reading the client's body to ours.
func classify(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed):
		return errClosed
	}
	var broken fasthttp.ErrBrokenChunk
	if errors.As(err, &broken) && errors.Is(err, io.ErrUnexpectedEOF) {
		return errClosed
	}
	return errFraming
}

// ClientErrorReasons lists every Observation.ClientError value.
var ClientErrorReasons = []string{"framing", "timeout", "too_large", "header_too_large", "closed"}

// reasonOf names a client error in metrics and logs.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, errTimeout):
		return "timeout"
	case errors.Is(err, errClosed):
		return "closed"
	case errors.Is(err, plugins.ErrBodyTooLarge):
		return "too_large"
	case errors.Is(err, errHeaderTooLarge):
		return "header_too_large"
	}
	return "framing"
}
