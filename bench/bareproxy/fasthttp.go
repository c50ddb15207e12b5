package bareproxy

import (
	"net/url"

	"github.com/valyala/fasthttp"
)

// NewFastHTTP returns the fasthttp reference proxy's handler, for a
// fasthttp.Server: every request goes to upstream's host over one
// fasthttp.HostClient (up to 1024 keep-alive connections), with the
// client's Host header and path kept, Connection removed so the upstream
// connection stays open, and the client's address appended as
// X-Forwarded-For. The upstream's answer is written into ctx.Response as
// it is, without Connection; an upstream that cannot be reached is a 502.
// There are no timeouts: it is a floor for benchmarks, not a gateway.
// The handler is safe for concurrent use.
func NewFastHTTP(upstream *url.URL) fasthttp.RequestHandler {
	hc := &fasthttp.HostClient{Addr: upstream.Host, MaxConns: 1024}
	return func(ctx *fasthttp.RequestCtx) {
		req := &ctx.Request
		req.Header.Del("Connection")
		req.Header.Add("X-Forwarded-For", ctx.RemoteIP().String())
		if err := hc.Do(req, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			return
		}
		ctx.Response.Header.Del("Connection")
	}
}
