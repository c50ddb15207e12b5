// Package router matches requests to routes. A Router is an immutable
// snapshot built from every route and its service; the proxy holds the
// current one in an atomic pointer and swaps in a new one on each change,
// so readers never lock and a route change never stalls requests. A
// Builder applies one route change at a cost that does not grow with the
// table and hands out such snapshots.
//
// Matching follows Kong 3.x's traditional_compatible flavor: see README.md
// for the rules, the tie-break order and the index layout.
package router

import (
	"errors"
	"fmt"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// Target is one route and the service it points at (nil when the route has
// no service).
type Target struct {
	Route   *entity.Route
	Service *entity.Service
}

// Match is the result of a successful match.
type Match struct {
	Route   *entity.Route
	Service *entity.Service
	// Prefix is the part of the request path the route matched: the plain
	// path prefix, or the whole regex match. It is empty when the route has
	// no paths.
	Prefix string
}

// Router is an immutable route table. It is safe for concurrent use. The
// zero Router and a nil *Router match nothing.
//
// A Router is a snapshot of a Builder: it shares every index node it did
// not change with the snapshots taken before it (see builder.go).
type Router struct {
	// exact holds the rules of routes listing a plain host, keyed by the
	// lowercased host without port.
	exact hostIndex
	// suffix holds leftmost-wildcard hosts: "*.example.com" is keyed
	// ".example.com".
	suffix hostIndex
	// prefix holds rightmost-wildcard hosts: "example.*" is keyed "example.".
	prefix hostIndex
	// suffixLens and prefixLens hold the key lengths present in suffix and
	// prefix, so Match looks up only candidate keys.
	suffixLens, prefixLens lengths
	// anyHost is the tree of the rules of routes without hosts (nil when
	// none).
	anyHost *node
	routes  int
}

// New builds a Router from targets. Routes whose paths cannot be compiled
// are left out, and the returned error (errors.Join of one error per route,
// naming the route) says which; the Router is usable either way.
// New does not retain targets' slice but keeps the pointed-to entities,
// which callers must not modify afterwards. Routes that serve only stream
// protocols (tcp, tls, udp, ...) are left out without an error. When two
// targets carry the same route id, the later one wins (as with Builder.Set).
func New(targets []Target) (*Router, error) {
	var errs []error
	b := NewBuilder()
	for i, t := range targets {
		if t.Route == nil {
			errs = append(errs, fmt.Errorf("router: target %d has no route", i))
			continue
		}
		if err := b.Set(t); err != nil {
			errs = append(errs, err)
		}
	}
	return b.Router(), errors.Join(errs...)
}

// Len returns the number of routes in the table.
func (r *Router) Len() int {
	if r == nil {
		return 0
	}
	return r.routes
}

// hostShards is the number of shards of a hostIndex: a change copies one
// shard's map, about 1/hostShards of the hosts.
const hostShards = 256

// hostIndex maps host keys to the root of their rule tree, in shards
// chosen by a hash of the key. A nil shard is empty.
type hostIndex [hostShards]*shard

// shard is one part of a hostIndex. gen tags the Builder generation that
// may still modify it (see Builder).
type shard struct {
	gen uint64
	m   map[string]*node
}

// get returns the tree under key, or nil.
func (h *hostIndex) get(key string) *node {
	s := h[shardOf(key)]
	if s == nil {
		return nil
	}
	return s.m[key]
}

// shardOf hashes key (FNV-1a) to a shard index without allocating.
func shardOf(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % hostShards)
}

// lengths is a set of string lengths; every length from 255 up counts as
// 255.
type lengths [4]uint64

func (l *lengths) add(n int) {
	n = min(n, 255)
	l[n/64] |= 1 << (n % 64)
}

func (l *lengths) remove(n int) {
	n = min(n, 255)
	l[n/64] &^= 1 << (n % 64)
}

func (l *lengths) has(n int) bool {
	n = min(n, 255)
	return l[n/64]&(1<<(n%64)) != 0
}

// isHTTP reports whether a route with these protocols belongs in the HTTP
// router. Kong's default protocols are http and https, so none means yes.
func isHTTP(protocols []string) bool {
	if len(protocols) == 0 {
		return true
	}
	for _, p := range protocols {
		switch p {
		case "http", "https", "grpc", "grpcs":
			return true
		}
	}
	return false
}

// routeName names a route in errors: its name when it has one, else its id.
func routeName(r *entity.Route) string {
	if r.Name != nil && *r.Name != "" {
		return fmt.Sprintf("%q (%s)", *r.Name, r.ID)
	}
	return r.ID
}
