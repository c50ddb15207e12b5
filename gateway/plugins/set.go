package plugins

import (
	"errors"
	"fmt"
	"iter"
	"sort"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// Scope bits: which of route, service and consumer a plugin entity is tied to.
const (
	scopeService uint8 = 1 << iota
	scopeRoute
	scopeConsumer
)

// precedence lists the scopes from the most to the least specific, in
// Kong's order: consumer+route+service > consumer+route > consumer+service
// > route+service > consumer > route > service > global.
var precedence = [8]uint8{
	scopeConsumer | scopeRoute | scopeService,
	scopeConsumer | scopeRoute,
	scopeConsumer | scopeService,
	scopeRoute | scopeService,
	scopeConsumer,
	scopeRoute,
	scopeService,
	0,
}

// Set is an immutable snapshot of the enabled plugin entities, indexed so
// that the proxy finds each plugin's most specific config for a request
// without allocating. It is safe for concurrent use.
type Set struct {
	entries []setEntry // by priority, highest first; ties by name
	phases  Phases     // union of the entries' phases
}

// Phases is a set of plugin phases.
type Phases uint8

// The phases, as bits of Phases.
const (
	PhaseRewrite Phases = 1 << iota
	PhaseAccess
	PhaseHeaderFilter
	PhaseBodyFilter
	PhaseLog
)

// phasesOf returns the phases h implements.
func phasesOf(h Handler) Phases {
	var p Phases
	for ph := PhaseRewrite; ph <= PhaseLog; ph <<= 1 {
		if implements(h, ph) {
			p |= ph
		}
	}
	return p
}

// setEntry holds every instance of one plugin.
type setEntry struct {
	name     string
	priority int
	// scopes has bit s set when some instance has scope s.
	scopes    uint16
	phases    Phases // union of the instances' phases
	instances map[scopeKey]Handler
}

// scopeKey identifies an instance by its ids ("" when not tied).
type scopeKey struct {
	route, service, consumer string
}

// NewSet configures every enabled plugin in ps through reg. Disabled
// entities are skipped. A plugin unknown to reg or an invalid config is an
// error (errors.Join of one error per entity, naming it); the Set returned
// alongside holds every other entity and is usable. NewSet does not retain
// ps.
func NewSet(reg *Registry, ps []*entity.Plugin) (*Set, error) {
	byName := map[string]*setEntry{}
	var errs []error
	for _, p := range ps {
		if p == nil || !p.Enabled {
			continue
		}
		plug, ok := reg.byName[p.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("plugins: plugin entity %s: %q: %w", p.ID, p.Name, ErrUnknownPlugin))
			continue
		}
		h, err := plug.Configure(p.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins: plugin entity %s (%s): %w", p.ID, p.Name, err))
			continue
		}
		e := byName[p.Name]
		if e == nil {
			e = &setEntry{name: p.Name, priority: plug.Priority(), instances: map[scopeKey]Handler{}}
			byName[p.Name] = e
		}
		k, scope := keyOf(p)
		e.instances[k] = h
		e.scopes |= 1 << scope
		e.phases |= phasesOf(h)
	}
	s := &Set{entries: make([]setEntry, 0, len(byName))}
	for _, e := range byName {
		s.entries = append(s.entries, *e)
		s.phases |= e.phases
	}
	sort.Slice(s.entries, func(i, j int) bool {
		a, b := s.entries[i], s.entries[j]
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		return a.name < b.name
	})
	return s, errors.Join(errs...)
}

// Len returns the number of distinct plugins in the set. A nil Set is empty.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// Resolve returns the name of the i-th plugin (by priority, highest first;
// 0 <= i < Len) and its most specific instance for c's route, service and
// consumer, or ok false when none applies. Call it just before running the
// plugin: a consumer set by an earlier plugin is taken into account, so an
// authentication plugin sees only consumer-less instances and the plugins
// after it see the consumer's. Resolve does not allocate.
func (s *Set) Resolve(i int, c *Context) (name string, h Handler, ok bool) {
	e := &s.entries[i]
	var route, service, consumer string
	if c.Route != nil {
		route = c.Route.ID
	}
	if c.Service != nil {
		service = c.Service.ID
	}
	if c.Consumer != nil {
		consumer = c.Consumer.ID
	}
	for _, scope := range precedence {
		if e.scopes&(1<<scope) == 0 {
			continue
		}
		k := scopeKey{}
		if scope&scopeRoute != 0 {
			if route == "" {
				continue
			}
			k.route = route
		}
		if scope&scopeService != 0 {
			if service == "" {
				continue
			}
			k.service = service
		}
		if scope&scopeConsumer != 0 {
			if consumer == "" {
				continue
			}
			k.consumer = consumer
		}
		if h, ok := e.instances[k]; ok {
			return e.name, h, true
		}
	}
	return e.name, nil, false
}

// Has reports whether some plugin in the set implements one of phases. A
// nil Set has none.
func (s *Set) Has(phases Phases) bool { return s != nil && s.phases&phases != 0 }

// Rewrite runs the rewrite phase of the global instances and reports
// whether the request goes on (false: a plugin called Exit).
func (s *Set) Rewrite(c *Context) bool {
	if !s.Has(PhaseRewrite) {
		return true
	}
	for i := range s.entries {
		e := &s.entries[i]
		if e.phases&PhaseRewrite == 0 || e.scopes&1 == 0 {
			continue
		}
		if h, ok := e.instances[scopeKey{}].(Rewriter); ok {
			h.Rewrite(c)
			if _, _, exited := c.Exited(); exited {
				return false
			}
		}
	}
	return true
}

// Applicable yields, in priority order, the name and most specific
// instance of each plugin that implements phase and applies to c's route,
// service and consumer. Each plugin is resolved when its turn comes, so a
// consumer that an earlier plugin authenticated is taken into account.
// Engines use it to run a phase with their own instrumentation.
func (s *Set) Applicable(c *Context, phase Phases) iter.Seq2[string, Handler] {
	return func(yield func(string, Handler) bool) {
		if !s.Has(phase) {
			return
		}
		for i := range s.entries {
			if s.entries[i].phases&phase == 0 {
				continue
			}
			if name, h, ok := s.Resolve(i, c); ok && implements(h, phase) && !yield(name, h) {
				return
			}
		}
	}
}

// implements reports whether h implements phase (one phase bit).
func implements(h Handler, phase Phases) bool {
	var ok bool
	switch phase {
	case PhaseRewrite:
		_, ok = h.(Rewriter)
	case PhaseAccess:
		_, ok = h.(Accessor)
	case PhaseHeaderFilter:
		_, ok = h.(HeaderFilterer)
	case PhaseBodyFilter:
		_, ok = h.(BodyFilterer)
	case PhaseLog:
		_, ok = h.(Logger)
	}
	return ok
}

// Access runs the access phase of every applicable plugin in order and
// reports whether the request goes on upstream (false: a plugin called
// Exit). A nil Set runs nothing.
func (s *Set) Access(c *Context) bool {
	for _, h := range s.Applicable(c, PhaseAccess) {
		h.(Accessor).Access(c)
		if _, _, exited := c.Exited(); exited {
			return false
		}
	}
	return true
}

// HeaderFilter runs the header_filter phase of every applicable plugin.
func (s *Set) HeaderFilter(c *Context) {
	for _, h := range s.Applicable(c, PhaseHeaderFilter) {
		h.(HeaderFilterer).HeaderFilter(c)
	}
}

// BodyFilter passes chunk through the body_filter phase of every
// applicable plugin, in order, and returns what to send.
func (s *Set) BodyFilter(c *Context, chunk []byte, eof bool) []byte {
	for _, h := range s.Applicable(c, PhaseBodyFilter) {
		chunk = h.(BodyFilterer).BodyFilter(c, chunk, eof)
	}
	return chunk
}

// Log runs the log phase of every applicable plugin.
func (s *Set) Log(c *Context) {
	for _, h := range s.Applicable(c, PhaseLog) {
		h.(Logger).Log(c)
	}
}

// AppliesBodyFilter reports whether some body filter applies to c's
// route, service and consumer: the engine then passes the response body
// through BodyFilter.
func (s *Set) AppliesBodyFilter(c *Context) bool {
	for range s.Applicable(c, PhaseBodyFilter) {
		return true
	}
	return false
}

// keyOf returns p's scope key and scope bits.
func keyOf(p *entity.Plugin) (scopeKey, uint8) {
	var k scopeKey
	var scope uint8
	if p.Route != nil && p.Route.ID != "" {
		k.route, scope = p.Route.ID, scope|scopeRoute
	}
	if p.Service != nil && p.Service.ID != "" {
		k.service, scope = p.Service.ID, scope|scopeService
	}
	if p.Consumer != nil && p.Consumer.ID != "" {
		k.consumer, scope = p.Consumer.ID, scope|scopeConsumer
	}
	return k, scope
}
