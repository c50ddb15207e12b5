package proxy

import (
	"context"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/router"
)

// exchange is one request's state, pooled. Its kitRequest, kitUpstream and
// kitResponse fields implement the plugin kit over fasthttp; they point
// back at the exchange, so handing them to plugins.Context allocates
// nothing.
type exchange struct {
	p   *Proxy
	ctx *fasthttp.RequestCtx
	set *plugins.Set
	pc  plugins.Context

	req  kitRequest
	up   kitUpstream
	resp kitResponse

	// method, host, path and query are the client's, copied once: the
	// request's own buffers are rewritten for the upstream in place.
	method, host, path, query string
	queryEdited               bool          // a plugin called Upstream.SetRawQuery
	args                      fasthttp.Args // the edited query, parsed
	match                     router.Match
	// upMethod and upPath are set by Upstream.SetMethod and SetPath; empty
	// keeps the client's method and the routed path.
	upMethod, upPath string
	hostSet          bool // a plugin set the Host header: it is sent as set

	start, sent time.Time
	upstream    time.Duration
	status      int
	respBytes   int64
	// pending holds the response header edits plugins make before a
	// response exists; responding is true once ctx.Response is the
	// response being sent.
	pending    []headerEdit
	responding bool

	body      clientBody
	watch     clientWatch
	upgrading bool          // the client asked for a protocol switch
	upgraded  *upgradedConn // the service agreed: the connection to splice
	scratch   []byte        // the upstream request target, then formatted numbers; reused
	clientErr error         // set when reading from the client failed
	span      trace.Span
}

type headerEdit struct {
	op          editOp
	name, value string
}

type editOp uint8

const (
	opSet editOp = iota
	opAdd
	opDel
)

func newExchange(p *Proxy) *exchange {
	x := &exchange{p: p}
	x.req.x, x.up.x, x.resp.x = x, x, x
	x.body.x = x
	x.watch.init()
	return x
}

// begin prepares x for the request in ctx.
func (x *exchange) begin(ctx *fasthttp.RequestCtx) {
	x.ctx = ctx
	x.start = x.p.clock.Precise()
	x.set = x.p.plugins.Load()
	x.method = methodString(ctx.Request.Header.Method())
	x.host = string(ctx.Request.Header.Host())
	x.path, x.query = splitURI(ctx.Request.Header.RequestURI())
	x.pc.Ctx = context.Background()
	x.pc.Request, x.pc.Upstream, x.pc.Response = &x.req, &x.up, &x.resp
	x.pc.ClientIP = clientIP(ctx)
	x.pc.Start = x.start
	x.body.begin(ctx)
}

// reset clears x for the pool, keeping its buffers.
func (x *exchange) reset() {
	x.body.reset()
	x.pc.Reset()
	clear(x.pending)
	*x = exchange{p: x.p, req: x.req, up: x.up, resp: x.resp, body: x.body, pending: x.pending[:0], pc: x.pc, scratch: x.scratch[:0],
		watch: clientWatch{timer: x.watch.timer, done: x.watch.done}}
}

// applyPending makes ctx.Response the response being sent and applies the
// header edits the plugins made before it existed.
func (x *exchange) applyPending() {
	x.responding = true
	h := &x.ctx.Response.Header
	for _, e := range x.pending {
		switch e.op {
		case opSet:
			h.Set(e.name, e.value)
		case opAdd:
			h.Add(e.name, e.value)
		case opDel:
			h.Del(e.name)
		}
	}
}

// kitRequest implements plugins.Request over the client's request.
type kitRequest struct{ x *exchange }

func (r *kitRequest) Method() string {
	if r.x.upMethod != "" {
		return r.x.upMethod
	}
	return r.x.method
}

func (r *kitRequest) Scheme() string {
	if r.x.ctx.IsTLS() {
		return "https"
	}
	return "http"
}

func (r *kitRequest) Host() string     { return r.x.host }
func (r *kitRequest) Path() string     { return r.x.path }
func (r *kitRequest) RawQuery() string { return r.x.query }

func (r *kitRequest) Query(name string) (string, bool) {
	args := r.x.ctx.QueryArgs()
	if r.x.queryEdited { // upstream edits are made in place: read the edited query
		args = &r.x.args
		args.Parse(r.x.query)
	}
	if !args.Has(name) {
		return "", false
	}
	return string(args.Peek(name)), true
}

func (r *kitRequest) Header(name string) (string, bool) {
	v := r.x.ctx.Request.Header.Peek(name)
	if v == nil {
		return "", false
	}
	return string(v), true
}

func (r *kitRequest) ContentLength() int64 {
	return r.x.body.declared()
}

func (r *kitRequest) Body(limit int64) ([]byte, error) {
	return r.x.body.readAll(limit)
}

func (r *kitRequest) VisitHeaders(fn func(name, value string)) {
	for k, v := range r.x.ctx.Request.Header.All() {
		fn(string(k), string(v))
	}
}

// kitUpstream implements plugins.Upstream: the client's request is edited
// in place and becomes the upstream request.
type kitUpstream struct{ x *exchange }

func (u *kitUpstream) SetHeader(name, value string) {
	if strings.EqualFold(name, "Host") {
		u.x.hostSet = true
	}
	u.x.ctx.Request.Header.Set(name, value)
}

func (u *kitUpstream) AddHeader(name, value string) { u.x.ctx.Request.Header.Add(name, value) }
func (u *kitUpstream) ClearHeader(name string)      { u.x.ctx.Request.Header.Del(name) }
func (u *kitUpstream) SetRawQuery(query string)     { u.x.query, u.x.queryEdited = query, true }
func (u *kitUpstream) SetBody(b []byte)             { u.x.body.replace(b) }

func (u *kitUpstream) SetMethod(method string) {
	u.x.upMethod = method
	u.x.ctx.Request.Header.SetMethod(method)
}

func (u *kitUpstream) SetPath(path string) { u.x.upPath = path }

// kitResponse implements plugins.Response.
type kitResponse struct{ x *exchange }

func (r *kitResponse) Status() int {
	if !r.x.responding {
		return 0
	}
	return r.x.ctx.Response.StatusCode()
}

func (r *kitResponse) Header(name string) (string, bool) {
	if r.x.responding {
		v := r.x.ctx.Response.Header.Peek(name)
		if v == nil {
			return "", false
		}
		return string(v), true
	}
	val, ok := "", false
	for _, e := range r.x.pending {
		if !strings.EqualFold(e.name, name) {
			continue
		}
		switch {
		case e.op == opDel:
			val, ok = "", false
		case e.op == opSet || !ok:
			val, ok = e.value, true
		}
	}
	return val, ok
}

// VisitHeaders lists the response's headers; before a response exists,
// none.
func (r *kitResponse) VisitHeaders(fn func(name, value string)) {
	if !r.x.responding {
		return
	}
	for k, v := range r.x.ctx.Response.Header.All() {
		fn(string(k), string(v))
	}
}

func (r *kitResponse) SetHeader(name, value string) { r.edit(opSet, name, value) }
func (r *kitResponse) AddHeader(name, value string) { r.edit(opAdd, name, value) }
func (r *kitResponse) ClearHeader(name string)      { r.edit(opDel, name, "") }

func (r *kitResponse) edit(op editOp, name, value string) {
	if !r.x.responding {
		r.x.pending = append(r.x.pending, headerEdit{op, name, value})
		return
	}
	h := &r.x.ctx.Response.Header
	switch op {
	case opSet:
		h.Set(name, value)
	case opAdd:
		h.Add(name, value)
	case opDel:
		h.Del(name)
	}
}

// requestHeader gives the router the request's headers.
type requestHeader struct{ h *fasthttp.RequestHeader }

// Values implements router.Header. It allocates, but only routes with
// header rules call it.
func (r requestHeader) Values(name string) []string {
	all := r.h.PeekAll(name)
	if len(all) == 0 {
		return nil
	}
	out := make([]string, len(all))
	for i, v := range all {
		out[i] = string(v)
	}
	return out
}

var (
	_ plugins.Request  = (*kitRequest)(nil)
	_ plugins.Upstream = (*kitUpstream)(nil)
	_ plugins.Response = (*kitResponse)(nil)

	_ plugins.HeaderVisitor = (*kitRequest)(nil)
	_ plugins.HeaderVisitor = (*kitResponse)(nil)
	_ router.Header         = requestHeader{}
)
