package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// statusClientClosed is nginx's 499: the client went away first.
const statusClientClosed = 499

// Kong's bodies for upstream failures (kong/error_handlers.lua) and for
// requests refused on the client's side.
const (
	msgBadGateway  = "An invalid response was received from the upstream server"
	msgUnavailable = "The upstream server is currently unavailable"
	msgTimeout     = "The upstream server is timing out"
	msgDNS         = "name resolution failed"
	msgBadRequest  = "Bad request"
	msgReqTimeout  = "Request timeout"
	msgTooLarge    = "Request size limit exceeded"
	msgHeaderLarge = "Request header or cookie too large"
)

// errHeaderTooLarge marks a head over proxy_max_header_size.
var errHeaderTooLarge = errors.New("request head exceeds proxy_max_header_size")

// errNoUpstream marks a service that has no address to connect to.
var errNoUpstream = errors.New("proxy: service has no host")

// answer responds with Kong's JSON body {"message":msg}, for requests the
// gateway answers itself.
func (p *Proxy) answer(x *exchange, status int, msg string) {
	x.pc.ExitMessage(status, msg)
	p.exit(x)
}

// exit sends the response a plugin (or the gateway) recorded with Exit,
// with the header edits made so far and Kong's headers, then runs the
// header_filter and body_filter phases on it.
func (p *Proxy) exit(x *exchange) {
	status, body, _ := x.pc.Exited()
	resp := &x.ctx.Response
	resp.SetStatusCode(status)
	x.applyPending()
	resp.Header.Set("X-Kong-Response-Latency", strconv.FormatInt(time.Since(x.start).Milliseconds(), 10))
	resp.Header.Set("Server", p.server)
	x.status = status
	if x.set.Has(plugins.PhaseHeaderFilter) {
		x.set.HeaderFilter(&x.pc)
	}
	if x.set.Has(plugins.PhaseBodyFilter) && x.set.AppliesBodyFilter(&x.pc) {
		body = x.set.BodyFilter(&x.pc, body, true)
	}
	if x.method != "HEAD" {
		x.respBytes = int64(len(body))
	}
	resp.SetBodyRaw(body)
	if x.clientErr != nil || x.body.state == bodyUnread && x.body.length < 0 {
		// A body the client is still sending, in unknown length, cannot be
		// skipped safely: close rather than read it to the end.
		resp.SetConnectionClose()
	}
}

// clientError answers a request the client got wrong, closing the
// connection: framing and body errors get 400, a body read timeout 408,
// a body over client_max_body_size 413. detail adds to the log line.
func (p *Proxy) clientError(x *exchange, err error, detail string) {
	x.clientErr = err
	status, msg := clientStatus(err)
	p.log.Warn("client error", "reason", reasonOf(err), "status", status, "client_ip", x.pc.ClientIP,
		"method", x.method, "path", x.path, "err", err, "detail", detail)
	x.pc.ExitMessage(status, msg)
	p.exit(x) // closes the connection: x.clientErr is set
}

// clientStatus maps a client error to its status and Kong-style message.
func clientStatus(err error) (int, string) {
	switch {
	case errors.Is(err, errTimeout):
		return fasthttp.StatusRequestTimeout, msgReqTimeout
	case errors.Is(err, plugins.ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, msgTooLarge
	case errors.Is(err, errHeaderTooLarge):
		return fasthttp.StatusRequestHeaderFieldsTooLarge, msgHeaderLarge
	}
	return fasthttp.StatusBadRequest, msgBadRequest
}

// refuse is the server's ErrorHandler: requests whose head could not be
// read or parsed never reach the handler, and get Kong's JSON body here.
// fasthttp closes the connection afterwards.
func (p *Proxy) refuse(ctx *fasthttp.RequestCtx, err error) {
	var cerr error
	var sizeErr *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &sizeErr):
		cerr = errHeaderTooLarge
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		cerr = errTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		cerr = errTooLarge
	default:
		cerr = fmt.Errorf("%w: %w", errFraming, err)
	}
	status, msg := clientStatus(cerr)
	p.log.Warn("client error", "reason", reasonOf(cerr), "status", status, "client_ip", ctx.RemoteIP().String(), "err", err)
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json; charset=utf-8")
	ctx.Response.Header.Set("Server", p.server)
	ctx.Response.SetBodyRaw(plugins.MessageBody(msg))
	if p.opts.Observer != nil {
		p.opts.Observer.Observe(Observation{Status: status, ClientError: reasonOf(cerr)})
	}
}

// clientGone ends a request whose client went away while the upstream was
// answering: nginx's 499, nobody to send a body to.
func (p *Proxy) clientGone(x *exchange) {
	x.status = statusClientClosed
	p.log.Debug("client closed the connection before the upstream answered", "client_ip", x.pc.ClientIP,
		"method", x.method, "path", x.path)
	x.ctx.Response.Reset()
	x.ctx.Response.SetStatusCode(statusClientClosed)
	x.ctx.SetConnectionClose()
}

// upstreamFailed answers an upstream failure with Kong's status and body,
// as nginx would: a refused or reset connection or a malformed response is
// 502, a timeout (connect or read) 504, a name that does not resolve 503.
func (p *Proxy) upstreamFailed(x *exchange, err error) {
	status, msg := upstreamStatus(err)
	p.log.Debug("upstream error", "status", status, "service", x.match.Service.ID, "err", err)
	p.answer(x, status, msg)
}

func upstreamStatus(err error) (int, string) {
	var dns *net.DNSError
	if errors.As(err, &dns) && !dns.IsTimeout {
		return fasthttp.StatusServiceUnavailable, msgDNS
	}
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fasthttp.StatusGatewayTimeout, msgTimeout
	}
	if errors.Is(err, errNoUpstream) {
		return fasthttp.StatusServiceUnavailable, msgUnavailable
	}
	return fasthttp.StatusBadGateway, msgBadGateway
}
