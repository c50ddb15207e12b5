// Package proxy is the gateway's data plane: an http.Handler that matches a
// request to a route, runs the plugins' access phase and forwards the
// request to the route's service with Kong's headers and error bodies.
package proxy

import (
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/router"
)

// Kong's bodies for requests the gateway answers itself.
const (
	msgNoRoute   = "no Route matched with those values"
	msgNoService = "no Service found with those values"
)

// Options configures a Proxy. The zero value is usable.
type Options struct {
	// Version is sent in Via ("1.1 sluice/<Version>") and Server headers.
	// Empty means "dev".
	Version string
	// TracerProvider creates the proxy's spans: a server span per request,
	// internal spans for routing and each plugin, and a client span per
	// upstream try, whose W3C traceparent is sent upstream. Nil means no
	// tracing.
	TracerProvider trace.TracerProvider
	// OnResponse, when set, is called once per request after the response
	// is written, on the request's goroutine; it must be quick.
	OnResponse func(Observation)
	// MaxIdleConnsPerHost sizes the keep-alive pool per upstream. 0 means
	// 1024.
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes idle upstream connections. 0 means 60s
	// (Kong's upstream_keepalive_idle_timeout).
	IdleConnTimeout time.Duration
	// UpstreamRootCAs verifies the certificates of HTTPS services. Nil
	// means the host's trust store.
	UpstreamRootCAs *x509.CertPool
}

// Observation describes one proxied request for metrics.
type Observation struct {
	// Route and Service are the matched entities; nil when none matched.
	Route   *entity.Route
	Service *entity.Service
	// Status is the status sent to the client; 499 when the client went
	// away before the upstream answered.
	Status int
	// Proxy is the time from receiving the request to sending it
	// upstream (or to answering, when the gateway answered itself).
	Proxy time.Duration
	// Upstream is the time from sending the request to the first
	// response byte; 0 when nothing was sent.
	Upstream time.Duration
	// Total is the time until the response was written.
	Total time.Duration
	// RequestBytes is the request body's declared length (0 when unknown,
	// as for chunked bodies); ResponseBytes the response body bytes sent.
	RequestBytes, ResponseBytes int64
}

// Proxy forwards requests to services. It is safe for concurrent use.
type Proxy struct {
	router  atomic.Pointer[router.Router]
	plugins atomic.Pointer[plugins.Set]

	opts       Options
	via        string
	server     string
	tracer     trace.Tracer
	tracing    bool
	transports *transports
	lastPort   atomic.Pointer[formattedPort]
	addrs      atomic.Pointer[addrCache]
	bufs       sync.Pool // *[]byte of bufSize
	states     sync.Pool // *state
}

// New returns a Proxy with no routes (every request gets Kong's 404) and no
// plugins until SetRouter and SetPlugins are called.
func New(opts Options) *Proxy {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	p := &Proxy{
		opts:    opts,
		via:     "1.1 sluice/" + opts.Version,
		server:  "sluice/" + opts.Version,
		tracing: opts.TracerProvider != nil,
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	p.tracer = tp.Tracer("github.com/sluice-gw/sluice/gateway/proxy")
	p.transports = newTransports(opts, &p.bufs)
	p.addrs.Store(new(addrCache))
	p.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	p.states.New = func() any { return new(state) }
	return p
}

// SetRouter makes rt the route table for the requests that start from now
// on. Nil removes every route.
func (p *Proxy) SetRouter(rt *router.Router) {
	p.addrs.Store(new(addrCache)) // the new table's services are new entities
	p.router.Store(rt)
}

// SetPlugins makes s the plugins for the requests that start from now on.
// Nil removes every plugin.
func (p *Proxy) SetPlugins(s *plugins.Set) { p.plugins.Store(s) }

// CloseIdleConnections closes the idle upstream connections.
func (p *Proxy) CloseIdleConnections() { p.transports.closeIdle() }

// state is the per-request scratch space, pooled.
type state struct {
	pc       plugins.Context
	match    router.Match
	path     string // requestPath, computed once
	start    time.Time
	sent     time.Time // request sent upstream
	upstream time.Duration
}

// ServeHTTP implements http.Handler: route, run plugins, forward.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := p.states.Get().(*state)
	defer p.release(st)
	st.start = time.Now()
	st.pc = plugins.Context{W: w, R: r, Start: st.start, Server: p.server, ClientIP: clientIP(r.RemoteAddr)}

	if p.tracing {
		var span trace.Span
		r, span = p.startServerSpan(r)
		st.pc.R = r
		defer func() { endServerSpan(span, st.pc.Status) }()
	}
	defer p.observe(st)

	st.path = requestPath(r)
	m, ok := p.route(r, st.path)
	if !ok {
		st.pc.RespondMessage(http.StatusNotFound, msgNoRoute)
		return
	}
	st.match = m
	st.pc.Route, st.pc.Service = m.Route, m.Service
	if m.Service == nil {
		st.pc.RespondMessage(http.StatusServiceUnavailable, msgNoService)
		return
	}
	if !p.access(&st.pc) {
		return
	}
	p.forward(st)
}

// requestPath is r's path as the client encoded it ("/a%20b", not
// "/a b"): the router normalizes encoded paths, and the upstream request
// line and X-Forwarded-Path must stay valid. Go keeps RawPath only when it
// differs from the default encoding of Path; encoding Path allocates only
// when something needs escaping.
func requestPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.EscapedPath()
}

// route matches r, whose requestPath is path, against the current route
// table.
func (p *Proxy) route(r *http.Request, path string) (router.Match, bool) {
	if p.tracing {
		_, span := p.tracer.Start(r.Context(), "sluice.router")
		defer span.End()
	}
	return p.router.Load().Match(r.Method, r.Host, path, r.Header)
}

// access runs the access phase of the current plugins.
func (p *Proxy) access(c *plugins.Context) bool {
	set := p.plugins.Load()
	for i := range set.Len() {
		name, h, ok := set.Resolve(i, c)
		if !ok {
			continue
		}
		if !p.runPlugin(name, h, c) {
			return false
		}
	}
	return true
}

func (p *Proxy) runPlugin(name string, h plugins.Handler, c *plugins.Context) bool {
	if !p.tracing {
		return h.Access(c)
	}
	parent := c.R.Context()
	ctx, span := p.tracer.Start(parent, "sluice.access.plugin."+name)
	defer span.End()
	// The plugin's own work (credential lookups) nests under its span; the
	// request keeps whatever the plugin changed, with the parent context.
	c.R = c.R.WithContext(ctx)
	defer func() { c.R = c.R.WithContext(parent) }()
	return h.Access(c)
}

// observe reports the request to Options.OnResponse.
func (p *Proxy) observe(st *state) {
	if p.opts.OnResponse == nil {
		return
	}
	end := time.Now()
	o := Observation{Route: st.match.Route, Service: st.match.Service, Status: st.pc.Status,
		Upstream: st.upstream, Total: end.Sub(st.start), Proxy: end.Sub(st.start),
		RequestBytes: max(st.pc.R.ContentLength, 0), ResponseBytes: st.pc.BodyBytes}
	if !st.sent.IsZero() {
		o.Proxy = st.sent.Sub(st.start)
	}
	p.opts.OnResponse(o)
}

func (p *Proxy) release(st *state) {
	*st = state{}
	p.states.Put(st)
}

// clientIP returns the host part of a RemoteAddr.
func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

var _ http.Handler = (*Proxy)(nil)
