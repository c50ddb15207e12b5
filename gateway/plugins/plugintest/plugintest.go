// Package plugintest is an in-memory engine for the plugin kit. It
// implements plugins.Request, plugins.Upstream and plugins.Response over
// maps and slices, runs a Set's phases in Kong's order, and shows a test
// what would go upstream and what the client would get.
//
// It is the second engine next to the proxy's fasthttp one: a plugin whose
// tests pass here and on the proxy uses nothing but the kit. Like the
// proxy, it edits the client's request in place for the upstream, so
// Request.Header, Query and Body return what earlier plugins set.
package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

// ClientIP is the client address of every Request; tests may change
// Context().ClientIP.
const ClientIP = "192.0.2.1"

// Request is one request through the in-memory engine. It implements
// plugins.Request; Context returns the plugins.Context to run plugins on,
// Upstream and Response what they did. A Request is used by one goroutine
// at a time.
type Request struct {
	c plugins.Context

	method, scheme, host, path string
	rawQuery                   string
	// upPath is the path Upstream.SetPath set; empty: the client's.
	upPath string
	// header holds the client's headers, edited in place into the
	// upstream request's; keys are canonical.
	header    textproto.MIMEHeader
	body      []byte
	chunked   bool
	bodyErr   error
	bodyReads int
	forwarded bool

	up     Upstream
	resp   Response
	answer answer
}

// answer is the fake service's response.
type answer struct {
	status int
	header textproto.MIMEHeader
	chunks [][]byte
}

// New returns a request as a client would send it: method ("" is GET),
// target ("/path?query", or an absolute "https://host/path" URL), header
// (names in any case; a "Transfer-Encoding: chunked" header makes the
// length unknown) and body, which New copies. It panics on a target that
// does not parse, a programmer mistake. The service answers 200 with no
// body unless Answer says otherwise.
func New(method, target string, header map[string]string, body []byte) *Request {
	if method == "" {
		method = "GET"
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic("plugintest: bad target " + strconv.Quote(target) + ": " + err.Error())
	}
	r := &Request{method: method, scheme: "http", host: "example.com", path: u.EscapedPath(), rawQuery: u.RawQuery,
		header: textproto.MIMEHeader{}, answer: answer{status: 200}}
	if u.Scheme != "" {
		r.scheme, r.host = u.Scheme, u.Host
	}
	for k, v := range header {
		r.header.Set(k, v)
	}
	if h := r.header.Get("Host"); h != "" {
		r.host = h
	}
	r.header.Set("Host", r.host)
	r.chunked = strings.EqualFold(r.header.Get("Transfer-Encoding"), "chunked")
	if len(body) > 0 {
		r.body = append([]byte(nil), body...)
	}
	if !r.chunked {
		r.header.Del("Content-Length")
		if len(r.body) > 0 {
			r.header.Set("Content-Length", strconv.Itoa(len(r.body)))
		}
	}
	r.up.r, r.resp.r = r, r
	r.resp.header = textproto.MIMEHeader{}
	r.c = plugins.Context{Ctx: context.Background(), Request: r, Upstream: &r.up, Response: &r.resp,
		ClientIP: ClientIP, Start: time.Now()}
	return r
}

// Context returns the request's plugin context, ready for a phase: set its
// Route, Service (or Consumer) before running plugins as routing would.
// It is the same Context on every call.
func (r *Request) Context() *plugins.Context { return &r.c }

// Upstream returns the request as it would be sent to the service.
func (r *Request) Upstream() *Upstream { return &r.up }

// Response returns the response to the client.
func (r *Request) Response() *Response { return &r.resp }

// Answer sets the response of the fake service that Run forwards to. The
// body comes in chunks, each passed to the body_filter phase on its own;
// no chunks is an empty body.
func (r *Request) Answer(status int, header map[string]string, chunks ...[]byte) {
	r.answer = answer{status: status, header: textproto.MIMEHeader{}, chunks: chunks}
	for k, v := range header {
		r.answer.header.Set(k, v)
	}
}

// FailBody makes Body return err, as when the client's body cannot be
// read: wrap plugins.ErrClientBody for a client's fault.
func (r *Request) FailBody(err error) { r.bodyErr = err }

// BodyReads returns how many times a plugin called Body.
func (r *Request) BodyReads() int { return r.bodyReads }

// Forwarded reports whether Run sent the request to the service: no
// plugin called Exit in the rewrite or access phase.
func (r *Request) Forwarded() bool { return r.forwarded }

// Method implements plugins.Request.
func (r *Request) Method() string { return r.method }

// Scheme implements plugins.Request.
func (r *Request) Scheme() string { return r.scheme }

// Host implements plugins.Request.
func (r *Request) Host() string { return r.host }

// Path implements plugins.Request.
func (r *Request) Path() string { return r.path }

// RawQuery implements plugins.Request.
func (r *Request) RawQuery() string { return r.rawQuery }

// Query implements plugins.Request. Malformed pairs are skipped, as
// net/url does.
func (r *Request) Query(name string) (string, bool) {
	q, _ := url.ParseQuery(r.rawQuery)
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Header implements plugins.Request.
func (r *Request) Header(name string) (string, bool) { return first(r.header, name) }

// ContentLength implements plugins.Request.
func (r *Request) ContentLength() int64 {
	if r.chunked {
		return -1
	}
	return int64(len(r.body))
}

// Body implements plugins.Request. A body over limit stays whole for the
// upstream. The slice returned has no spare capacity, so that a plugin
// appending to it cannot write into the body.
func (r *Request) Body(limit int64) ([]byte, error) {
	r.bodyReads++
	if r.bodyErr != nil {
		return nil, r.bodyErr
	}
	if int64(len(r.body)) > limit {
		return nil, fmt.Errorf("plugintest: body of %d bytes is over the %d asked for: %w", len(r.body), limit, plugins.ErrBodyTooLarge)
	}
	return r.body[:len(r.body):len(r.body)], nil
}

// VisitHeaders implements plugins.HeaderVisitor, names in canonical
// form and sorted.
func (r *Request) VisitHeaders(fn func(name, value string)) { visit(r.header, fn) }

// Upstream is the request to the service. It implements plugins.Upstream,
// and its other methods show what would be sent.
type Upstream struct{ r *Request }

// SetHeader implements plugins.Upstream.
func (u *Upstream) SetHeader(name, value string) { u.r.header.Set(name, value) }

// AddHeader implements plugins.Upstream.
func (u *Upstream) AddHeader(name, value string) { u.r.header.Add(name, value) }

// ClearHeader implements plugins.Upstream.
func (u *Upstream) ClearHeader(name string) { u.r.header.Del(name) }

// SetRawQuery implements plugins.Upstream.
func (u *Upstream) SetRawQuery(query string) { u.r.rawQuery = query }

// SetMethod implements plugins.Upstream.
func (u *Upstream) SetMethod(method string) { u.r.method = method }

// SetPath implements plugins.Upstream.
func (u *Upstream) SetPath(path string) { u.r.upPath = path }

// Method returns the upstream method.
func (u *Upstream) Method() string { return u.r.method }

// Path returns the upstream path: the one SetPath set, else the client's.
func (u *Upstream) Path() string {
	if u.r.upPath != "" {
		return u.r.upPath
	}
	return u.r.path
}

// SetBody implements plugins.Upstream. Like an engine, it sets
// Content-Length and drops chunked framing.
func (u *Upstream) SetBody(b []byte) {
	u.r.body, u.r.chunked = b, false
	u.r.header.Del("Transfer-Encoding")
	u.r.header.Set("Content-Length", strconv.Itoa(len(b)))
}

// Header returns the first value of the upstream header name.
func (u *Upstream) Header(name string) (string, bool) { return first(u.r.header, name) }

// Values returns every value of the upstream header name. The caller
// must not modify the slice.
func (u *Upstream) Values(name string) []string { return u.r.header.Values(name) }

// Headers returns a copy of the upstream headers, keyed by canonical name.
func (u *Upstream) Headers() textproto.MIMEHeader { return clone(u.r.header) }

// RawQuery returns the upstream query string.
func (u *Upstream) RawQuery() string { return u.r.rawQuery }

// Body returns the upstream body. The caller must not modify it.
func (u *Upstream) Body() []byte { return u.r.body }

// Response is the response to the client. It implements plugins.Response;
// before Run responds, header edits are recorded and applied, in order,
// over the headers of the response sent (the service's or an Exit), as
// the proxy does.
type Response struct {
	r          *Request
	status     int
	header     textproto.MIMEHeader
	pending    []edit
	responding bool
	body       []byte
}

type edit struct {
	op          byte // 's'et, 'a'dd, 'd'elete
	name, value string
}

// Status implements plugins.Response.
func (p *Response) Status() int { return p.status }

// Header implements plugins.Response.
func (p *Response) Header(name string) (string, bool) {
	return first(p.Headers(), name)
}

// SetHeader implements plugins.Response.
func (p *Response) SetHeader(name, value string) { p.edit(edit{'s', name, value}) }

// AddHeader implements plugins.Response.
func (p *Response) AddHeader(name, value string) { p.edit(edit{'a', name, value}) }

// ClearHeader implements plugins.Response.
func (p *Response) ClearHeader(name string) { p.edit(edit{'d', name, ""}) }

// VisitHeaders implements plugins.HeaderVisitor: the headers of the
// response being sent, none before.
func (p *Response) VisitHeaders(fn func(name, value string)) {
	if p.responding {
		visit(p.header, fn)
	}
}

// Values returns every value of the response header name, with the edits
// made so far.
func (p *Response) Values(name string) []string {
	return p.Headers().Values(name)
}

// Headers returns a copy of the response headers with the edits made so
// far, keyed by canonical name.
func (p *Response) Headers() textproto.MIMEHeader {
	if p.responding {
		return clone(p.header)
	}
	h := textproto.MIMEHeader{}
	p.apply(h)
	return h
}

// Body returns the body the client got after the body_filter phase;
// empty for a HEAD request.
func (p *Response) Body() []byte { return p.body }

func (p *Response) edit(e edit) {
	if !p.responding {
		p.pending = append(p.pending, e)
		return
	}
	apply(p.header, e)
}

// respond makes the response the one being sent, with status and header
// under the recorded edits.
func (p *Response) respond(status int, header textproto.MIMEHeader) {
	p.status, p.responding = status, true
	for k, v := range header {
		p.header[k] = append([]string(nil), v...)
	}
	p.apply(p.header)
}

func (p *Response) apply(h textproto.MIMEHeader) {
	for _, e := range p.pending {
		apply(h, e)
	}
}

// Run runs set's phases on c in Kong's order, as an engine would: rewrite
// (with c.Route and c.Service cleared, since it runs before routing; they
// are restored afterwards), access, then, on the Exit response or on the
// service's answer (see Request.Answer), header_filter, body_filter (when
// AppliesBodyFilter: each chunk in turn, eof on the last) and log. A HEAD
// response's body is dropped after the body_filter phase. c must come from
// Request.Context; Run panics otherwise. A nil set runs nothing.
func Run(set *plugins.Set, c *plugins.Context) {
	r := c.Request.(*Request)
	route, service := c.Route, c.Service
	c.Route, c.Service = nil, nil
	goOn := set.Rewrite(c)
	c.Route, c.Service = route, service
	if goOn {
		goOn = set.Access(c)
	}
	status, header, chunks := r.answer.status, r.answer.header, r.answer.chunks
	if goOn {
		r.forwarded = true
	} else {
		var body []byte
		status, body, _ = c.Exited()
		header, chunks = nil, [][]byte{body}
	}
	r.resp.respond(status, header)
	set.HeaderFilter(c)
	var out []byte
	switch {
	case !set.AppliesBodyFilter(c):
		for _, ch := range chunks {
			out = append(out, ch...)
		}
	case len(chunks) == 0:
		out = set.BodyFilter(c, nil, true)
	default:
		for i, ch := range chunks {
			out = append(out, set.BodyFilter(c, ch, i == len(chunks)-1)...)
		}
	}
	if r.method == "HEAD" {
		out = nil
	}
	r.resp.body = out
	c.Served = plugins.Served{Total: time.Since(c.Start), RequestBytes: int64(len(r.body)), ResponseBytes: int64(len(out))}
	c.Served.Proxy = c.Served.Total
	if r.forwarded {
		c.Served.Upstream = max(c.Served.Total/2, 1) // the fake service answers at once; nonzero says it did
		c.Served.Proxy = c.Served.Total - c.Served.Upstream
		c.Served.UpstreamURI = r.up.Path()
		if r.rawQuery != "" {
			c.Served.UpstreamURI += "?" + r.rawQuery
		}
	}
	set.Log(c)
}

// NewSet returns a Set holding one global instance of p with config (""
// for every default), as one enabled plugin entity tied to no route,
// service or consumer would.
func NewSet(p plugins.Plugin, config string) (*plugins.Set, error) {
	e := &entity.Plugin{ID: "plugintest-" + p.Name(), Name: p.Name(), Enabled: true}
	if config != "" {
		e.Config = json.RawMessage(config)
	}
	return plugins.NewSet(plugins.NewRegistry(p), []*entity.Plugin{e})
}

func first(h textproto.MIMEHeader, name string) (string, bool) {
	v := h[textproto.CanonicalMIMEHeaderKey(name)]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func visit(h textproto.MIMEHeader, fn func(name, value string)) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			fn(k, v)
		}
	}
}

func clone(h textproto.MIMEHeader) textproto.MIMEHeader {
	out := make(textproto.MIMEHeader, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func apply(h textproto.MIMEHeader, e edit) {
	switch e.op {
	case 's':
		h.Set(e.name, e.value)
	case 'a':
		h.Add(e.name, e.value)
	case 'd':
		h.Del(e.name)
	}
}

var (
	_ plugins.Request  = (*Request)(nil)
	_ plugins.Upstream = (*Upstream)(nil)
	_ plugins.Response = (*Response)(nil)

	_ plugins.HeaderVisitor = (*Request)(nil)
	_ plugins.HeaderVisitor = (*Response)(nil)
)
