package plugins

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// The plugin kit: what a plugin sees of a request, in the spirit of Kong's
// PDK. Plugins use these interfaces and Context only; they never see an
// HTTP engine's types. Each engine (fasthttp for HTTP/1.1, net/http for
// HTTP/2) implements Request, Upstream and Response over its own request
// state, so a plugin runs unchanged on every engine.
//
// Strings and byte slices a kit method returns are valid until the request
// ends; a plugin that keeps one longer (in a cache, a counter key) must copy
// it. Names of headers are case-insensitive everywhere.

// Request is the client's request (kong.request). Upstream edits are made
// in place, as in Kong: a header an earlier plugin set with Upstream is
// what Header returns.
type Request interface {
	// Method returns the request method ("GET").
	Method() string
	// Scheme returns "http" or "https".
	Scheme() string
	// Host returns the Host header as the client sent it.
	Host() string
	// Path returns the path as the client encoded it ("/a%20b"), without
	// the query.
	Path() string
	// RawQuery returns the query string without the '?'.
	RawQuery() string
	// Query returns the first value of the query argument name, decoded.
	Query(name string) (string, bool)
	// Header returns the first value of header name.
	Header(name string) (string, bool)
	// ContentLength returns the declared body length, -1 when unknown
	// (chunked) and 0 when there is no body.
	ContentLength() int64
	// Body returns the whole body when it is at most limit bytes, and
	// ErrBodyTooLarge (wrapped) when it is longer. Nothing is lost either
	// way: the bytes read stay the body sent upstream. Other errors are the
	// client's: a timeout or a malformed body (ErrClientBody). The slice
	// must not be modified.
	Body(limit int64) ([]byte, error)
}

// Upstream edits the request sent to the service (kong.service.request).
type Upstream interface {
	// SetHeader replaces every value of header name with value. Setting
	// Host sends that Host to the service, whatever preserve_host says.
	SetHeader(name, value string)
	// AddHeader adds a value to header name.
	AddHeader(name, value string)
	// ClearHeader removes header name.
	ClearHeader(name string)
	// SetRawQuery replaces the query string (without '?'; "" removes it).
	SetRawQuery(query string)
	// SetBody replaces the body; the engine sets Content-Length. The
	// engine keeps b: the caller must not modify it afterwards.
	SetBody(b []byte)
	// SetMethod replaces the method ("POST"); Request.Method returns it
	// afterwards.
	SetMethod(method string)
	// SetPath replaces the whole upstream path (encoded, starting with
	// '/'), instead of the one routing derives from the service's path
	// and the route's strip_path (kong.service.request.set_path).
	SetPath(path string)
}

// HeaderVisitor is implemented by the engines' Request and Response
// handles: VisitHeaders calls fn for every header, in the order sent, a
// header with several values once per value (kong.request.get_headers).
// The strings are request memory.
type HeaderVisitor interface {
	VisitHeaders(fn func(name, value string))
}

// Response is the response to the client (kong.response). In the rewrite
// and access phases there is no response yet: header edits are recorded and
// applied to whatever is sent, the service's answer or an Exit. From the
// header_filter phase on they edit the response about to be sent.
type Response interface {
	// Status returns the response status; 0 before the header_filter
	// phase.
	Status() int
	// Header returns the first value of header name.
	Header(name string) (string, bool)
	// SetHeader replaces every value of header name with value.
	SetHeader(name, value string)
	// AddHeader adds a value to header name.
	AddHeader(name, value string)
	// ClearHeader removes header name.
	ClearHeader(name string)
}

// ErrBodyTooLarge is wrapped by Request.Body when the body is longer than
// the limit asked for, and by engines for bodies over client_max_body_size.
var ErrBodyTooLarge = errors.New("request body too large")

// ErrClientBody is wrapped by Request.Body when the client sent a body that
// cannot be read: malformed framing, a timeout, or a connection closed
// early. The request must not go upstream.
var ErrClientBody = errors.New("cannot read the client's request body")

// Context is one request as the plugins see it: the kit's handles, the
// matched entities, the authenticated consumer and per-request values that
// plugins share between phases. It is used by one goroutine at a time and
// must not be kept after the request ends.
type Context struct {
	// Ctx carries the request's trace span and deadline into the lookups a
	// plugin makes (credential cache, datastore). Never nil inside a phase.
	Ctx context.Context
	// Request, Upstream and Response are the engine's handles.
	Request  Request
	Upstream Upstream
	Response Response
	// Route and Service are the matched route and its service; nil in the
	// rewrite phase, which runs before routing.
	Route   *entity.Route
	Service *entity.Service
	// Consumer and Credential are set by Authenticate; nil until then.
	// Credential is the authenticating plugin's credential entity.
	// Anonymous is true when Consumer is the anonymous one.
	Consumer   *entity.Consumer
	Credential entity.Entity
	Anonymous  bool
	// ClientIP is the client's address without the port (kong.client.get_ip).
	ClientIP string
	// Start is when the request was received.
	Start time.Time
	// Served is what the engine measured of the request; set before the
	// log phase, zero before.
	Served Served

	exit   exitResponse
	values []ctxValue
}

// Served is what the engine measured of a request, for the log phase
// (Kong's latencies, sizes and upstream_uri).
type Served struct {
	// Proxy is the time from receiving the request to sending it upstream
	// (or to answering, when the gateway answered itself); Upstream the
	// time from sending it to the first response byte, 0 when nothing was
	// sent; Total the time until the response was handed to the server.
	Proxy, Upstream, Total time.Duration
	// RequestBytes is the request body's length as received;
	// ResponseBytes the response body's length when known.
	RequestBytes, ResponseBytes int64
	// UpstreamURI is the path and query sent to the service; empty when
	// nothing was sent.
	UpstreamURI string
}

// exitResponse is what Exit recorded.
type exitResponse struct {
	status int
	body   []byte
}

type ctxValue struct {
	key, val any
}

// Reset clears c for another request, keeping its storage. Engines pool
// Contexts.
func (c *Context) Reset() {
	clear(c.values)
	*c = Context{values: c.values[:0]}
}

// Authenticate records the consumer (and the credential that identified it;
// nil for an anonymous consumer) for the plugins that run later
// (kong.client.authenticate).
func (c *Context) Authenticate(consumer *entity.Consumer, credential entity.Entity, anonymous bool) {
	c.Consumer, c.Credential, c.Anonymous = consumer, credential, anonymous
}

// Exit ends the request with status and body (kong.response.exit):
// headers are name, value pairs set on the response. In the rewrite and
// access phases no later plugin of that phase runs and nothing is sent
// upstream; header_filter, body_filter and log still run on the exit
// response, as in Kong. Exit keeps body: the caller must not modify it.
func (c *Context) Exit(status int, body []byte, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		c.Response.SetHeader(headers[i], headers[i+1])
	}
	c.exit = exitResponse{status: status, body: body}
}

// ExitMessage ends the request with Kong's JSON error body
// {"message":msg}.
func (c *Context) ExitMessage(status int, msg string, headers ...string) {
	c.Response.SetHeader("Content-Type", "application/json; charset=utf-8")
	c.Exit(status, MessageBody(msg), headers...)
}

// Exited reports whether a plugin called Exit, and with what.
func (c *Context) Exited() (status int, body []byte, ok bool) {
	return c.exit.status, c.exit.body, c.exit.status != 0
}

// Set stores val under key for the rest of the request (kong.ctx). Use an
// unexported key type, as with context.Context values, so that plugins do
// not collide; a key shared on purpose is kong.ctx.shared.
func (c *Context) Set(key, val any) {
	for i := range c.values {
		if c.values[i].key == key {
			c.values[i].val = val
			return
		}
	}
	c.values = append(c.values, ctxValue{key, val})
}

// Get returns the value Set stored under key, or nil.
func (c *Context) Get(key any) any {
	for i := range c.values {
		if c.values[i].key == key {
			return c.values[i].val
		}
	}
	return nil
}
