// Package requesttransformer implements Kong's request-transformer
// plugin: it removes, renames, replaces, adds and appends request headers,
// query arguments and body fields (JSON, URL-encoded and multipart forms),
// can replace the upstream path and the method, in Kong's order.
package requesttransformer

import (
	"encoding/json"
	"strings"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "request-transformer"
	Priority = 801
)

// Plugin is the request-transformer plugin.
type Plugin struct{}

// New returns the request-transformer plugin.
func New() *Plugin { return &Plugin{} }

// Name implements plugins.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements plugins.Plugin.
func (*Plugin) Priority() int { return Priority }

// Configure implements plugins.Plugin.
func (*Plugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	cfg, r, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	return &handler{Config: cfg, r: r}, nil
}

// handler is one configured instance; its JSON form is its Config.
type handler struct {
	Config
	r *rules
}

// rules is a Config compiled: names split from values, templates parsed.
type rules struct {
	method                       string
	uri                          *template
	remove                       ops
	rename, replace, add, append ops
}

// ops holds one operation's targets: names (remove) or pairs.
type ops struct {
	body, headers, query               []string
	bodyPairs, headerPairs, queryPairs []pair
}

type pair struct {
	name  string
	value template
}

func (o *ops) hasBody() bool  { return len(o.body) > 0 || len(o.bodyPairs) > 0 }
func (o *ops) hasQuery() bool { return len(o.query) > 0 || len(o.queryPairs) > 0 }

// Access implements plugins.Accessor, in Kong's order: the path, the
// method, headers, body, then the query string.
func (h *handler) Access(c *plugins.Context) {
	r := h.r
	if r.uri != nil {
		path := r.uri.render(c.Request)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		c.Upstream.SetPath(path)
	}
	if r.method != "" {
		h.transformMethod(c)
	}
	h.transformHeaders(c)
	if !h.transformBody(c) {
		return
	}
	h.transformQuery(c)
}

// transformMethod sets the method; a form body's arguments are appended
// to the query string when the method becomes GET, HEAD or TRACE.
func (h *handler) transformMethod(c *plugins.Context) {
	m := h.r.method
	if m == "GET" || m == "HEAD" || m == "TRACE" {
		if ct, _ := c.Request.Header("Content-Type"); contentKind(ct) == kindForm && c.Request.ContentLength() != 0 {
			if body, err := c.Request.Body(maxBody); err == nil {
				q := parseArgs(c.Request.RawQuery())
				q = append(q, parseArgs(string(body))...)
				if len(q) > 0 {
					c.Upstream.SetRawQuery(q.encode())
				}
			}
		}
	}
	c.Upstream.SetMethod(m)
}

// transformHeaders applies the header operations. Host is never removed,
// renamed, added or appended; replacing it sets the Host sent upstream.
func (h *handler) transformHeaders(c *plugins.Context) {
	r, req, up := h.r, c.Request, c.Upstream
	for _, n := range r.remove.headers {
		if !isHost(n) {
			up.ClearHeader(n)
		}
	}
	for _, p := range r.rename.headerPairs {
		newName, _ := p.value.literal()
		if isHost(p.name) || isHost(newName) || strings.EqualFold(p.name, newName) {
			continue
		}
		values := headerValues(req, p.name)
		if len(values) == 0 {
			continue
		}
		up.ClearHeader(p.name)
		up.ClearHeader(newName)
		for _, v := range values {
			up.AddHeader(newName, v)
		}
	}
	for _, p := range r.replace.headerPairs {
		if _, ok := req.Header(p.name); ok || isHost(p.name) {
			up.SetHeader(p.name, p.value.render(req))
		}
	}
	for _, p := range r.add.headerPairs {
		if _, ok := req.Header(p.name); !ok && !isHost(p.name) {
			up.SetHeader(p.name, p.value.render(req))
		}
	}
	for _, p := range r.append.headerPairs {
		if !isHost(p.name) {
			up.AddHeader(p.name, p.value.render(req))
		}
	}
}

// transformQuery applies the query string operations, when there are any.
// The query is re-encoded with its arguments sorted by name, as Kong's
// set_query does.
func (h *handler) transformQuery(c *plugins.Context) {
	r := h.r
	if !r.remove.hasQuery() && !r.rename.hasQuery() && !r.replace.hasQuery() && !r.add.hasQuery() && !r.append.hasQuery() {
		return
	}
	q := parseArgs(c.Request.RawQuery())
	q = q.apply(r, c.Request, selectQuery, true)
	c.Upstream.SetRawQuery(q.encode())
}

func isHost(name string) bool { return strings.EqualFold(name, "host") }

// headerValues returns every value of header name, or its first when the
// engine cannot list headers.
func headerValues(req plugins.Request, name string) []string {
	hv, ok := req.(plugins.HeaderVisitor)
	if !ok {
		if v, ok := req.Header(name); ok {
			return []string{v}
		}
		return nil
	}
	var out []string
	hv.VisitHeaders(func(n, v string) {
		if strings.EqualFold(n, name) {
			out = append(out, strings.Clone(v))
		}
	})
	return out
}

var (
	_ plugins.Plugin    = (*Plugin)(nil)
	_ plugins.Describer = (*Plugin)(nil)
	_ plugins.Accessor  = (*handler)(nil)
)
