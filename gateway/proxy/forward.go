package proxy

import (
	"bufio"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// forward sends the request to the matched service and hands the
// response, streamed, to the server. Client errors and upstream errors
// part here: each is answered apart (clientError, upstreamFailed).
func (p *Proxy) forward(x *exchange) {
	svc := x.match.Service
	if svc.Host == "" {
		p.upstreamFailed(x, errNoUpstream)
		return
	}
	a := p.addrOf(svc)
	req := &x.ctx.Request
	x.upgrading = isUpgrade(&req.Header)
	if err := x.body.attach(req, x.match.Route.RequestBuffering); err != nil {
		p.clientError(x, err, "")
		return
	}
	p.prepareUpstream(x, a)
	resp := &x.ctx.Response
	if err := p.roundTrip(x, a, req, resp); err != nil {
		switch {
		case x.body.err != nil: // the upstream client failed pulling the client's body
			p.clientError(x, x.body.err, "while streaming the body upstream")
		case x.watch.isGone():
			p.clientGone(x)
		default:
			p.upstreamFailed(x, err)
		}
		return
	}
	if x.upgraded != nil {
		p.hijack(x, x.upgraded)
		return
	}
	p.respond(x)
}

// prepareUpstream turns the client's request into the upstream request in
// place: hop-by-hop headers out (kept for an upgrade), Kong's forwarded
// headers in, the upstream path and Host.
func (p *Proxy) prepareUpstream(x *exchange, a *svcAddr) {
	req := &x.ctx.Request
	h := &req.Header
	h.ResetConnectionClose()
	p.setForwarded(x, x.upgrading)
	var uri []byte
	if x.upPath != "" {
		uri = append(x.scratch[:0], x.upPath...)
	} else {
		uri = append(x.scratch[:0], x.match.UpstreamPath(x.path)...)
	}
	if x.query != "" {
		uri = append(append(uri, '?'), x.query...)
	}
	x.scratch = uri
	req.SetRequestURIBytes(uri)
	if !x.match.Route.PreserveHost && !x.hostSet {
		h.SetHost(a.host)
	}
}

// roundTrip sends req, retrying up to service.retries times when nothing
// was sent (the connection failed) or when the method is idempotent and
// the body can be sent again.
func (p *Proxy) roundTrip(x *exchange, a *svcAddr, req *fasthttp.Request, resp *fasthttp.Response) error {
	hc := p.upstreams.client(a, x.match.Service)
	x.watch.start(x.ctx.Conn())
	defer x.watch.stop()
	tries := max(x.match.Service.Retries, 0) + 1
	staleRetried := false
	for try := 1; ; try++ {
		x.sent = p.clock.Precise()
		err := p.try(x, hc, req, resp, try)
		if err == nil {
			x.upstream = time.Since(x.sent)
			return nil
		}
		if x.body.err != nil || x.watch.isGone() || !p.retryable(x, err) {
			return err
		}
		var stale *staleErr
		if errors.As(err, &stale) && !staleRetried {
			// A pooled connection the upstream had closed: not a try.
			staleRetried = true
			try--
			continue
		}
		if try >= tries {
			return err
		}
	}
}

// try is one upstream attempt, traced as a client span when tracing is on.
func (p *Proxy) try(x *exchange, hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, n int) error {
	if !p.tracing {
		return p.send(x, hc, req, resp)
	}
	ctx, span := p.tracer.Start(x.pc.Ctx, "sluice.balancer", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("try_count", n), attribute.String("net.peer.name", hc.Addr)))
	defer span.End()
	injectTrace(ctx, &req.Header)
	err := p.send(x, hc, req, resp)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "upstream failure")
	} else {
		span.SetAttributes(attribute.Int("http.status_code", resp.StatusCode()))
	}
	return err
}

// retryable reports whether a failed try may be repeated: always when the
// connection could not be made (nothing was sent), otherwise only for an
// idempotent method whose body can be sent again.
func (p *Proxy) retryable(x *exchange, err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return x.body.state != bodyStreaming || x.body.n == 0
	}
	return x.replayable()
}

// replayable reports whether the request may be sent twice: an idempotent
// method whose body is in memory.
func (x *exchange) replayable() bool {
	if !x.body.replayable() {
		return false
	}
	switch x.req.Method() {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// respond finishes the upstream's response for the client: hop-by-hop
// headers out, Via and Kong's latency headers in, the plugins' header
// edits, then header_filter and body_filter. The body streams when the
// upstream's does.
func (p *Proxy) respond(x *exchange) {
	resp := &x.ctx.Response
	h := &resp.Header
	if resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		// Not asked for: nothing sensible can be forwarded (send closed
		// the connection).
		p.upstreamFailed(x, errors.New("proxy: unsolicited 101 Switching Protocols"))
		return
	}
	h.ResetConnectionClose()
	if scan(h.All()) {
		removeHopHeaders(h.Peek, h.Del)
	}
	normalizing := !h.DisableNormalizing() // our names are canonical already
	if via := h.Peek("Via"); len(via) > 0 {
		h.Set("Via", string(via)+", "+p.via)
	} else {
		h.Add("Via", p.via)
	}
	h.AddBytesV("X-Kong-Upstream-Latency", strconv.AppendInt(x.scratch[:0], x.upstream.Milliseconds(), 10))
	h.AddBytesV("X-Kong-Proxy-Latency", strconv.AppendInt(x.scratch[:0], x.sent.Sub(x.start).Milliseconds(), 10))
	if normalizing { // the plugins' names are anyone's
		h.EnableNormalizing()
	}
	x.status = resp.StatusCode()
	x.applyPending()
	if x.set.Has(plugins.PhaseHeaderFilter) {
		x.set.HeaderFilter(&x.pc)
	}
	if cl := h.ContentLength(); cl > 0 {
		x.respBytes = int64(cl)
	}
	if x.set.Has(plugins.PhaseBodyFilter) && x.set.AppliesBodyFilter(&x.pc) {
		p.filterBody(x)
	}
	if x.body.unfinished() && resp.BodyStream() == nil {
		// The upstream answered (a 413, say) before taking the whole body:
		// send the answer, then drain the rest of the body before the
		// connection closes, so that the client gets to read the answer.
		body, ctx, stream := append([]byte(nil), resp.Body()...), x.ctx, x.body.stream
		resp.SetConnectionClose()
		resp.SetBodyStreamWriter(func(w *bufio.Writer) {
			if _, err := w.Write(body); err == nil && w.Flush() == nil {
				linger(ctx, stream)
			}
		})
	}
}

// filterBody passes the response body through the body_filter phase, in
// chunks of 32 KiB. fasthttp writes a body after the handler returns, when
// the request's plugin context is gone, so a response with a body filter
// is read whole and filtered here.
func (p *Proxy) filterBody(x *exchange) {
	resp := &x.ctx.Response
	body := resp.Body()
	var out []byte
	for {
		chunk := body[:min(len(body), 32<<10)]
		body = body[len(chunk):]
		eof := len(body) == 0
		out = append(out, x.set.BodyFilter(&x.pc, chunk, eof)...)
		if eof {
			break
		}
	}
	resp.SetBody(out)
	x.respBytes = int64(len(out))
}
