// Package plugins defines the plugin contract of the gateway, the Registry
// of available plugins and the Set, an immutable snapshot of the enabled
// plugin entities that the proxy consults on every request.
//
// Each plugin lives in its own sub-package and is added to a Registry in
// main; there are no package-level registrations.
package plugins

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// ErrUnknownPlugin is wrapped by the errors returned for a plugin name no
// registered plugin has.
var ErrUnknownPlugin = errors.New("unknown plugin")

// Plugin is one kind of plugin (key-auth, rate-limiting, ...).
type Plugin interface {
	// Name returns the plugin's name as the Admin API spells it.
	Name() string
	// Priority orders plugins within a phase: higher runs first.
	Priority() int
	// Configure decodes config (nil or empty means every default), applies
	// defaults, validates it and returns the handler of one plugin
	// instance. Invalid fields are reported as a FieldErrors error. The
	// handler's JSON encoding is the config with defaults applied.
	Configure(config json.RawMessage) (Handler, error)
}

// Handler is one configured plugin instance. It must be safe for
// concurrent use.
type Handler interface {
	// Access runs the access phase. It returns false when it answered the
	// request itself (through Context.Respond), which stops the request.
	Access(c *Context) bool
}

// Context is the per-request state shared by the proxy and the plugins.
// It is used by one goroutine at a time.
type Context struct {
	// W and R are the client's response writer and request. Plugins edit
	// the headers sent upstream by editing R.Header (and the query string
	// through R.URL.RawQuery): the proxy builds the upstream request after
	// the access phase.
	W http.ResponseWriter
	R *http.Request
	// Route and Service are the matched route and its service.
	Route   *entity.Route
	Service *entity.Service
	// Consumer and Credential are set by an authentication plugin; nil
	// until then. Anonymous is true when Consumer is the anonymous one.
	Consumer   *entity.Consumer
	Credential *entity.KeyAuthCredential
	Anonymous  bool
	// ClientIP is the client's address without the port.
	ClientIP string
	// Start is when the proxy received the request; Respond uses it for
	// X-Kong-Response-Latency. Zero leaves that header out.
	Start time.Time
	// Server is the Server header Respond sends (e.g. "sluice/0.1.0");
	// empty sends none.
	Server string
	// Status is the status Respond sent, 0 while nobody has responded.
	Status int
	// BodyBytes counts the response body bytes sent to the client, by
	// Respond or by the proxy copying the upstream's body.
	BodyBytes int64

	// vals is the unused part of the current header value slab (see
	// Values).
	vals []string
}

// valueSlab is how many header values one allocation of Values holds: a
// proxied request with key-auth and rate-limiting sets about 20.
const valueSlab = 32

// Values returns the one-element header value []string{v}, carved from a
// per-request slab so that setting a header costs no allocation of its
// own. The slice has capacity 1: appending to it copies. A fresh slab is
// allocated per request (never pooled), because net/http may serialize
// the response headers after the handler returns.
func (c *Context) Values(v string) []string {
	if len(c.vals) == 0 {
		c.vals = make([]string, valueSlab)
	}
	c.vals[0] = v
	out := c.vals[0:1:1]
	c.vals = c.vals[1:]
	return out
}

// Respond answers the request with status, a Content-Type and body,
// adding Kong's headers for gateway-generated responses.
func (c *Context) Respond(status int, contentType string, body []byte) {
	h := c.W.Header()
	if contentType != "" {
		h["Content-Type"] = c.Values(contentType)
	}
	h["Content-Length"] = c.Values(strconv.Itoa(len(body)))
	if !c.Start.IsZero() {
		h["X-Kong-Response-Latency"] = c.Values(strconv.FormatInt(time.Since(c.Start).Milliseconds(), 10))
	}
	if c.Server != "" {
		h["Server"] = c.Values(c.Server)
	}
	c.Status = status
	c.W.WriteHeader(status)
	if c.R == nil || c.R.Method != http.MethodHead {
		n, _ := c.W.Write(body)
		c.BodyBytes += int64(n)
	}
}

// RespondMessage answers with Kong's JSON error body {"message":msg}.
func (c *Context) RespondMessage(status int, msg string) {
	c.Respond(status, "application/json; charset=utf-8", MessageBody(msg))
}

// MessageBody returns Kong's JSON body {"message":msg} followed by a newline.
func MessageBody(msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	return append(b, '\n')
}

// Registry holds the available plugins. It is built once at start-up and
// is safe for concurrent use afterwards.
type Registry struct {
	byName map[string]Plugin
}

// NewRegistry returns a Registry of ps. It panics on a duplicate or empty
// name, a programmer mistake.
func NewRegistry(ps ...Plugin) *Registry {
	r := &Registry{byName: make(map[string]Plugin, len(ps))}
	for _, p := range ps {
		if p.Name() == "" {
			panic("plugins: plugin with an empty name")
		}
		if _, dup := r.byName[p.Name()]; dup {
			panic("plugins: duplicate plugin " + p.Name())
		}
		r.byName[p.Name()] = p
	}
	return r
}

// Validate checks config for the plugin called name. It returns the config
// with defaults applied; or, when the config is invalid, a nil config, the
// problems keyed by config field name and a non-nil error; or an error
// wrapping ErrUnknownPlugin when no plugin has that name.
func (r *Registry) Validate(name string, config json.RawMessage) (json.RawMessage, map[string]string, error) {
	p, ok := r.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("plugins: plugin %q: %w", name, ErrUnknownPlugin)
	}
	h, err := p.Configure(config)
	if err != nil {
		var fe FieldErrors
		if errors.As(err, &fe) {
			return nil, map[string]string(fe), fmt.Errorf("plugins: invalid %s config: %w", name, err)
		}
		return nil, nil, fmt.Errorf("plugins: invalid %s config: %w", name, err)
	}
	out, err := json.Marshal(h)
	if err != nil {
		return nil, nil, fmt.Errorf("plugins: cannot encode %s config: %w", name, err)
	}
	return out, nil, nil
}

// Names returns the registered plugin names, sorted. The caller owns the
// slice.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FieldErrors maps config field names to what is wrong with them. The key
// "@entity" holds problems that involve several fields.
type FieldErrors map[string]string

// Error implements error.
func (fe FieldErrors) Error() string {
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += k + ": " + fe[k]
	}
	return s
}

// DecodeConfig decodes config into dst, which holds the defaults already.
// Unknown fields and wrongly typed values become FieldErrors in Kong's
// words ("unknown field", "expected an integer"). An empty config or null
// leaves dst unchanged.
func DecodeConfig(config json.RawMessage, dst any) error {
	if len(config) == 0 || string(config) == "null" {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return FieldErrors{"@entity": "expected a record"}
	}
	fe := FieldErrors{}
	known := jsonFields(dst)
	for name, raw := range fields {
		if !known[name] {
			fe[name] = "unknown field"
			continue
		}
		if err := json.Unmarshal(fieldDoc(name, raw), dst); err != nil {
			fe[name] = typeMessage(err)
		}
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}
