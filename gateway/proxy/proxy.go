// Package proxy is the gateway's HTTP/1.1 data plane on fasthttp: it
// matches a request to a route, runs the plugins' phases through the
// plugin kit and forwards the request to the route's service with Kong's
// headers and error bodies.
//
// The plugins never see fasthttp: kit.go adapts a request to the kit's
// interfaces (plugins.Request, Upstream, Response), so the same plugins run
// on another engine.
package proxy

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
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

// Options configures a Proxy. The zero value is usable: every limit and
// timeout then takes nginx's default.
type Options struct {
	// Version is sent in Via ("1.1 sluice/<Version>") and Server headers.
	// Empty means "dev".
	Version string
	// TracerProvider creates the proxy's spans: a server span per request,
	// internal spans for routing and each plugin, and a client span per
	// upstream try, whose W3C traceparent is sent upstream. Nil means no
	// tracing.
	TracerProvider trace.TracerProvider
	// Observer, when set, is told of each request once its response is
	// handed to the server, on the request's goroutine; it must be quick.
	// Requests the server refuses before the handler (malformed heads) are
	// reported too, with ClientError set.
	Observer Observer
	// Logger receives client and upstream errors; nil means slog.Default().
	Logger *slog.Logger
	// MaxConnsPerHost bounds the connections to one upstream address. 0
	// means 1024.
	MaxConnsPerHost int
	// IdleConnTimeout closes idle upstream connections. 0 means 60s
	// (Kong's upstream_keepalive_idle_timeout).
	IdleConnTimeout time.Duration
	// UpstreamRootCAs verifies the certificates of HTTPS services. Nil
	// means the host's trust store.
	UpstreamRootCAs *x509.CertPool
	// MaxHeaderSize bounds the request line and headers (431 beyond). 0
	// means 64 KiB.
	MaxHeaderSize int
	// MaxBodySize bounds request bodies, chunked ones included (413
	// beyond). 0 means no limit (client_max_body_size).
	MaxBodySize int64
	// BodyBufferSize is how much of a buffered request body stays in
	// memory; the rest is spooled to a temporary file. 0 means 8 KiB
	// (client_body_buffer_size).
	BodyBufferSize int
	// HeaderTimeout bounds reading a request head (client_header_timeout),
	// BodyTimeout the time between two reads of its body
	// (client_body_timeout), KeepaliveTimeout an idle client connection
	// (keepalive_timeout) and SendTimeout the time between two writes to
	// the client (send_timeout). 0 means nginx's 60s, 60s, 75s and 60s.
	HeaderTimeout, BodyTimeout, KeepaliveTimeout, SendTimeout time.Duration
}

// Observer receives the Observation of every request: metrics
// (gateway/proxymetrics) register one with the proxy through Options.
type Observer interface {
	Observe(Observation)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Observation)

// Observe calls f(o).
func (f ObserverFunc) Observe(o Observation) { f(o) }

// Observation describes one request for metrics.
type Observation struct {
	// Route and Service are the matched entities; nil when none matched.
	Route   *entity.Route
	Service *entity.Service
	// Status is the status sent to the client; 499 when the client went
	// away before the upstream answered.
	Status int
	// ClientError names what was wrong with the client's request when the
	// gateway refused it or could not read it: "framing", "timeout",
	// "too_large", "header_too_large", "closed". Empty otherwise.
	ClientError string
	// Proxy is the time from receiving the request to sending it
	// upstream (or to answering, when the gateway answered itself).
	Proxy time.Duration
	// Upstream is the time from sending the request to the first
	// response byte; 0 when nothing was sent.
	Upstream time.Duration
	// Total is the time until the response was handed to the server.
	Total time.Duration
	// RequestBytes is the request body's length as received (declared
	// length for streamed bodies); ResponseBytes the response body's
	// length when known (0 for streamed bodies of unknown length).
	RequestBytes, ResponseBytes int64
}

// Proxy forwards requests to services. It is safe for concurrent use.
type Proxy struct {
	router  atomic.Pointer[router.Router]
	plugins atomic.Pointer[plugins.Set]

	opts      Options
	log       *slog.Logger
	via       string
	server    string
	tracer    trace.Tracer
	tracing   bool
	upstreams *upstreams
	clock     *coarseClock
	lastPort  atomic.Pointer[formattedPort]
	addrs     atomic.Pointer[addrCache]
	certs     atomic.Pointer[ClientCertificates]
	draining  atomic.Bool
	exchanges sync.Pool // *exchange
}

// New returns a Proxy with no routes (every request gets Kong's 404) and no
// plugins until SetRouter and SetPlugins are called. It starts a clock
// goroutine: Close the Proxy when done.
func New(opts Options) *Proxy {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	opts.HeaderTimeout = orDefault(opts.HeaderTimeout, 60*time.Second)
	opts.BodyTimeout = orDefault(opts.BodyTimeout, 60*time.Second)
	opts.KeepaliveTimeout = orDefault(opts.KeepaliveTimeout, 75*time.Second)
	opts.SendTimeout = orDefault(opts.SendTimeout, 60*time.Second)
	opts.IdleConnTimeout = orDefault(opts.IdleConnTimeout, 60*time.Second)
	if opts.MaxHeaderSize <= 0 {
		opts.MaxHeaderSize = 64 << 10
	}
	if opts.BodyBufferSize <= 0 {
		opts.BodyBufferSize = 8 << 10
	}
	if opts.MaxConnsPerHost <= 0 {
		opts.MaxConnsPerHost = 1024
	}
	p := &Proxy{
		opts:    opts,
		log:     opts.Logger,
		via:     "1.1 sluice/" + opts.Version,
		server:  "sluice/" + opts.Version,
		tracing: opts.TracerProvider != nil,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	p.tracer = tp.Tracer("github.com/sluice-gw/sluice/gateway/proxy")
	p.clock = newCoarseClock()
	p.upstreams = newUpstreams(opts, p.clock)
	p.addrs.Store(new(addrCache))
	p.exchanges.New = func() any { return newExchange(p) }
	return p
}

// Server returns a fasthttp server for the proxy with the Options' limits
// and timeouts. Serve it on a listener wrapped by Listener; Shutdown it to
// stop.
func (p *Proxy) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:        p.serve,
		ErrorHandler:   p.refuse,
		HeaderReceived: p.headerReceived,
		Name:           p.server,
		// The read buffer holds the request head: its size is the header
		// limit (fasthttp answers 431 beyond).
		ReadBufferSize: p.opts.MaxHeaderSize,
		// The head's and keep-alive timeouts are Listener's connections'
		// (connState), and so is send_timeout; the body's reads get their
		// own deadlines (clientBody).
		ConnState: p.connState,
		// The handler reads the clock itself (coarseClock.Precise).
		LazyRequestTime: true,
		// Bodies are read by the handler, after routing, so that the
		// route's request_buffering decides between buffering and
		// streaming; fasthttp only prefetches up to 8 KiB.
		StreamRequestBody:             true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		NoDefaultDate:                 false,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		// Idle worker goroutines go after 2 s (fasthttp's default is 10 s),
		// so a burst does not leave hundreds waiting.
		MaxIdleWorkerDuration: 2 * time.Second,
		Logger:                fasthttpLogger{p.log},
	}
}

// headerReceived gives the body's first bytes, which fasthttp reads (up
// to 8 KiB) before the handler runs, client_body_timeout instead of the
// head's timeout.
func (p *Proxy) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == 0 || h.ContentLength() == -2 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: p.opts.BodyTimeout}
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

// SetDraining makes every response from now on close its client
// connection (on) or not (off), so that clients move to other nodes
// while this one drains.
func (p *Proxy) SetDraining(on bool) { p.draining.Store(on) }

// CloseIdleConnections closes the idle upstream connections.
func (p *Proxy) CloseIdleConnections() { p.upstreams.closeIdle() }

// Close closes the idle upstream connections and stops the proxy's clock,
// after its server has shut down.
func (p *Proxy) Close() {
	p.upstreams.closeIdle()
	p.clock.Stop()
}

// serve is the request handler: check framing, rewrite, route, access,
// forward, then the response phases.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx) {
	x := p.exchanges.Get().(*exchange)
	x.begin(ctx)
	defer p.release(x)
	if p.tracing {
		p.startServerSpan(x)
		defer p.endServerSpan(x)
	}
	defer p.observe(x)
	if p.draining.Load() {
		ctx.SetConnectionClose()
	}

	if reason := badFraming(&ctx.Request.Header); reason != "" {
		p.clientError(x, errFraming, reason)
		return
	}
	if x.set.Has(plugins.PhaseRewrite) && !x.set.Rewrite(&x.pc) {
		p.exit(x)
		return
	}
	m, ok := p.route(x)
	if !ok {
		p.answer(x, 404, msgNoRoute)
		return
	}
	x.match = m
	x.pc.Route, x.pc.Service = m.Route, m.Service
	if m.Service == nil {
		p.answer(x, 503, msgNoService)
		return
	}
	if p.refuseProtocol(x) {
		return
	}
	if !p.access(x) {
		p.exit(x)
		return
	}
	if x.clientErr != nil { // a plugin's body read failed on the client's side
		p.clientError(x, x.clientErr, "")
		return
	}
	p.forward(x)
}

// route matches the request against the current route table.
func (p *Proxy) route(x *exchange) (router.Match, bool) {
	if p.tracing {
		_, span := p.tracer.Start(x.pc.Ctx, "sluice.router")
		defer span.End()
	}
	return p.router.Load().Match(x.method, x.host, x.path, requestHeader{&x.ctx.Request.Header})
}

// access runs the access phase of the current plugins, each in its own
// span when tracing. It reports whether the request goes on upstream.
func (p *Proxy) access(x *exchange) bool {
	if !x.set.Has(plugins.PhaseAccess) {
		return true
	}
	if !p.tracing {
		return x.set.Access(&x.pc)
	}
	c := &x.pc
	for name, h := range x.set.Applicable(c, plugins.PhaseAccess) {
		parent := c.Ctx
		var span trace.Span
		c.Ctx, span = p.tracer.Start(parent, "sluice.access.plugin."+name)
		h.(plugins.Accessor).Access(c)
		span.End()
		c.Ctx = parent
		if _, _, exited := c.Exited(); exited {
			return false
		}
	}
	return true
}

// observe reports the request to Options.Observer.
func (p *Proxy) observe(x *exchange) {
	if p.opts.Observer == nil {
		return
	}
	s := p.measure(x)
	o := Observation{Route: x.match.Route, Service: x.match.Service, Status: x.status,
		Upstream: s.Upstream, Total: s.Total, Proxy: s.Proxy,
		RequestBytes: s.RequestBytes, ResponseBytes: s.ResponseBytes}
	if x.clientErr != nil {
		o.ClientError = reasonOf(x.clientErr)
	}
	p.opts.Observer.Observe(o)
}

// measure returns x's measurements, taken once (in x.pc.Served) as the
// request ends, for the observer and the log phase alike.
func (p *Proxy) measure(x *exchange) plugins.Served {
	if x.pc.Served.Total == 0 {
		x.pc.Served = p.served(x)
	}
	return x.pc.Served
}

// served measures x as it ends.
func (p *Proxy) served(x *exchange) plugins.Served {
	end := p.clock.Precise()
	s := plugins.Served{Upstream: x.upstream, Total: end.Sub(x.start), Proxy: end.Sub(x.start),
		RequestBytes: x.body.received(), ResponseBytes: x.respBytes}
	if !x.sent.IsZero() {
		s.Proxy = x.sent.Sub(x.start)
	}
	return s
}

// release runs the log phase and returns x to the pool.
func (p *Proxy) release(x *exchange) {
	if x.set.Has(plugins.PhaseLog) {
		p.measure(x)
		if !x.sent.IsZero() {
			x.pc.Served.UpstreamURI = string(x.ctx.Request.RequestURI())
		}
		x.set.Log(&x.pc)
	}
	x.reset()
	p.exchanges.Put(x)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// fasthttpLogger sends fasthttp's own messages to slog at debug level:
// every client error the proxy sees is logged by the proxy already.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
	}
}

var _ fasthttp.Logger = fasthttpLogger{}
