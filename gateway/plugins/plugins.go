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
	"io"
	"reflect"
	"sort"
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

// Handler is one configured plugin instance: a value implementing one or
// more of the phase interfaces below (Rewriter, Accessor, HeaderFilterer,
// BodyFilterer, Logger), whose JSON encoding is its normalized config. It
// must be safe for concurrent use.
type Handler any

// The phases, in Kong's order. Within a phase plugins run by priority,
// highest first. A handler implements the phases it needs.
type (
	// Rewriter runs before routing, for global plugin instances only (as
	// in Kong: no route, service or consumer is known yet).
	Rewriter interface{ Rewrite(c *Context) }
	// Accessor runs after routing; it may authenticate, edit the upstream
	// request, or answer with c.Exit.
	Accessor interface{ Access(c *Context) }
	// HeaderFilterer runs when the response head is known (the service's
	// or an Exit), before it is sent.
	HeaderFilterer interface{ HeaderFilter(c *Context) }
	// BodyFilterer sees the response body in chunks and returns what to
	// send instead (chunk itself to pass it on). eof is true on the last
	// call, whose chunk may be empty. A body filter makes the engine
	// stream the response through it.
	BodyFilterer interface {
		BodyFilter(c *Context, chunk []byte, eof bool) []byte
	}
	// Logger runs after the response was sent.
	Logger interface{ Log(c *Context) }
)

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

// ConfigSchema returns Kong's schema of the config record of the plugin
// called name (see RecordSchema) and its entity_checks (nil when none), or
// an error wrapping ErrUnknownPlugin. A plugin that is not a Describer has
// a record with no declared fields.
func (r *Registry) ConfigSchema(name string) (config map[string]any, checks []any, err error) {
	p, ok := r.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("plugins: plugin %q: %w", name, ErrUnknownPlugin)
	}
	if c, ok := p.(EntityChecker); ok {
		checks = c.EntityChecks()
	}
	if d, ok := p.(Describer); ok {
		return RecordSchema(d.DefaultConfig()), checks, nil
	}
	return map[string]any{"type": "record", "required": true, "fields": []any{}}, checks, nil
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

// Close releases what the registered plugins hold open (rate-limiting's
// Redis connections): it calls Close on every plugin that is an
// io.Closer, and returns their errors joined.
func (r *Registry) Close() error {
	var errs []error
	for _, name := range r.Names() {
		if c, ok := r.byName[name].(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("plugins: closing %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// FieldErrors maps config field names to what is wrong with them: a field
// of a nested record as "record.field". The key "@entity" holds problems
// that involve several fields.
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

// DecodeConfig decodes config into dst, a pointer to a struct that holds
// the defaults already, and checks the constraints of its `kong` tags (see
// RecordSchema). Unknown fields, wrongly typed values and broken
// constraints become FieldErrors in Kong's words ("unknown field",
// "expected an integer"). An empty config or null leaves dst's defaults.
func DecodeConfig(config json.RawMessage, dst any) error {
	if len(config) == 0 || string(config) == "null" {
		fe := FieldErrors{}
		checkConstraints(reflect.ValueOf(dst), fe)
		if len(fe) > 0 {
			return fe
		}
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return FieldErrors{"@entity": "expected a record"}
	}
	fe := FieldErrors{}
	known := jsonFields(dst)
	sets := setFields(dst)
	for name, raw := range fields {
		if !known[name] {
			fe[name] = "unknown field"
			continue
		}
		if rec, ok := recordField(dst, name); ok {
			decodeRecord(name, raw, rec, fe)
			continue
		}
		if err := json.Unmarshal(fieldDoc(name, raw), dst); err != nil {
			fe[name] = typeMessage(err)
			if fe[name] == "expected an array" && sets[name] {
				fe[name] = "expected a set"
			}
		}
	}
	if len(fe) == 0 {
		checkConstraints(reflect.ValueOf(dst), fe)
	}
	if len(fe) > 0 {
		return fe
	}
	return nil
}
