package router

import (
	"errors"
	"fmt"
	"strings"
)

// Builder keeps a route table that changes one route at a time and hands
// out immutable snapshots of it. A Set or Delete costs the same whatever
// the size of the table: it copies the tree nodes on the path to the rules
// it files or removes, and the one host shard map that holds their tree;
// the other nodes and shards stay shared with the snapshots already taken.
// Rules are ordered by comparing them (rule.before), never by a global
// rank, so an insert renumbers nothing.
//
// Generations keep a long run of changes between two snapshots cheap (the
// "transient" trick of persistent data structures): nodes and shards are
// tagged with the generation that created them, a Builder modifies the
// ones of its current generation in place, and Router starts a new
// generation, which freezes everything the returned Router can reach.
//
// A Builder is not safe for concurrent use; its Routers are.
type Builder struct {
	gen uint64
	// r is the table being built; Router returns a copy of it.
	r Router
	// routes holds the rules of every route in the table, by route id.
	routes map[string][]*rule
	// suffixN and prefixN count the wildcard keys of each length, so that
	// the Router's length sets drop a length with its last key.
	suffixN, prefixN [256]int32
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{gen: 1, routes: make(map[string][]*rule)}
}

// Set adds t's route to the table or replaces the route with the same id.
// A route that cannot be compiled is taken out of the table (its previous
// version does not keep serving) and the error names it; a route serving
// only stream protocols is taken out without an error. Set keeps the
// pointed-to entities, which callers must not modify afterwards.
func (b *Builder) Set(t Target) error {
	if t.Route == nil {
		return errors.New("router: target has no route")
	}
	b.Delete(t.Route.ID)
	if !isHTTP(t.Route.Protocols) {
		return nil
	}
	rules, err := compile(t.Route, t.Service)
	if err != nil {
		return fmt.Errorf("router: route %s: %w", routeName(t.Route), err)
	}
	for _, rl := range rules {
		b.file(rl)
	}
	b.routes[t.Route.ID] = rules
	b.r.routes = len(b.routes)
	return nil
}

// Delete takes the route with this id out of the table and reports whether
// it was there.
func (b *Builder) Delete(routeID string) bool {
	rules, ok := b.routes[routeID]
	if !ok {
		return false
	}
	for _, rl := range rules {
		b.unfile(rl)
	}
	delete(b.routes, routeID)
	b.r.routes = len(b.routes)
	return true
}

// Len returns the number of routes in the table.
func (b *Builder) Len() int { return len(b.routes) }

// Router returns a snapshot of the table. Later calls to Set and Delete do
// not change it.
func (b *Builder) Router() *Router {
	r := b.r
	b.gen++
	return &r
}

// file adds rl to the tree of each of its hosts (the host-less tree when
// it has none).
func (b *Builder) file(rl *rule) {
	if len(rl.hosts) == 0 {
		if b.r.anyHost == nil {
			b.r.anyHost = &node{gen: b.gen}
		}
		b.r.anyHost = b.r.anyHost.insert(b.gen, rl.key, rl)
		return
	}
	for _, h := range rl.hosts {
		idx, key := b.index(h)
		s := b.ownShard(idx, key)
		t := s.m[key]
		if t == nil {
			t = &node{gen: b.gen}
			b.countKey(idx, key, 1)
		}
		s.m[key] = t.insert(b.gen, rl.key, rl)
	}
}

// unfile removes rl from every tree file put it in, dropping trees and
// shards it leaves empty.
func (b *Builder) unfile(rl *rule) {
	if len(rl.hosts) == 0 {
		if b.r.anyHost != nil {
			b.r.anyHost = b.r.anyHost.remove(b.gen, rl.key, rl, true)
		}
		return
	}
	for _, h := range rl.hosts {
		idx, key := b.index(h)
		i := shardOf(key)
		s := idx[i]
		if s == nil || s.m[key] == nil {
			continue // a route listing one host twice
		}
		t := s.m[key]
		nt := t.remove(b.gen, rl.key, rl, true)
		if nt == t {
			continue
		}
		s = b.ownShard(idx, key)
		if nt != nil {
			s.m[key] = nt
			continue
		}
		delete(s.m, key)
		b.countKey(idx, key, -1)
		if len(s.m) == 0 {
			idx[i] = nil
		}
	}
}

// index returns the host index a rule host goes in and its key there.
func (b *Builder) index(h string) (*hostIndex, string) {
	switch {
	case strings.HasPrefix(h, "*."):
		return &b.r.suffix, h[1:]
	case strings.HasSuffix(h, ".*"):
		return &b.r.prefix, h[:len(h)-1]
	}
	return &b.r.exact, h
}

// ownShard returns the shard of key in idx, created or copied so that the
// current generation may modify it.
func (b *Builder) ownShard(idx *hostIndex, key string) *shard {
	i := shardOf(key)
	s := idx[i]
	switch {
	case s == nil:
		s = &shard{gen: b.gen, m: make(map[string]*node)}
	case s.gen != b.gen:
		m := make(map[string]*node, len(s.m)+1)
		for k, v := range s.m {
			m[k] = v
		}
		s = &shard{gen: b.gen, m: m}
	}
	idx[i] = s
	return s
}

// countKey tracks the wildcard key lengths as keys come (delta 1) and go
// (-1).
func (b *Builder) countKey(idx *hostIndex, key string, delta int32) {
	var counts *[256]int32
	var lens *lengths
	switch idx {
	case &b.r.suffix:
		counts, lens = &b.suffixN, &b.r.suffixLens
	case &b.r.prefix:
		counts, lens = &b.prefixN, &b.r.prefixLens
	default:
		return
	}
	n := min(len(key), 255)
	counts[n] += delta
	if counts[n] > 0 {
		lens.add(n)
	} else {
		lens.remove(n)
	}
}
