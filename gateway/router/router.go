// Package router matches requests to routes. A Router is an immutable
// snapshot built from every route and its service; the proxy holds the
// current one in an atomic pointer and a rebuild swaps in a new one, so
// readers never lock and a route change never stalls requests.
//
// Matching follows Kong 3.x's traditional_compatible flavor: see README.md
// for the rules, the tie-break order and the index layout.
package router

import (
	"errors"
	"fmt"
	"sort"
	"strings"

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
type Router struct {
	// exact holds the rules of routes listing a plain host, keyed by the
	// lowercased host without port.
	exact map[string]*table
	// suffix holds leftmost-wildcard hosts: "*.example.com" is keyed
	// ".example.com".
	suffix map[string]*table
	// prefix holds rightmost-wildcard hosts: "example.*" is keyed "example.".
	prefix map[string]*table
	// suffixLens and prefixLens hold the key lengths present in suffix and
	// prefix, so Match looks up only candidate keys.
	suffixLens, prefixLens lengths
	// anyHost holds the rules of routes without hosts (nil when none).
	anyHost *table
	routes  int
}

// New builds a Router from targets. Routes whose paths cannot be compiled
// are left out, and the returned error (errors.Join of one error per route,
// naming the route) says which; the Router is usable either way.
// New does not retain targets' slice but keeps the pointed-to entities,
// which callers must not modify afterwards. Routes that serve only stream
// protocols (tcp, tls, udp, ...) are left out without an error.
func New(targets []Target) (*Router, error) {
	var errs []error
	rules := make([]*rule, 0, len(targets))
	r := &Router{}
	for i, t := range targets {
		if t.Route == nil {
			errs = append(errs, fmt.Errorf("router: target %d has no route", i))
			continue
		}
		if !isHTTP(t.Route.Protocols) {
			continue
		}
		rs, err := compile(t.Route, t.Service)
		if err != nil {
			errs = append(errs, fmt.Errorf("router: route %s: %w", routeName(t.Route), err))
			continue
		}
		r.routes++
		rules = append(rules, rs...)
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].before(rules[j]) })
	for i, rl := range rules {
		rl.rank = i
		r.add(rl)
	}
	return r, errors.Join(errs...)
}

// Len returns the number of routes in the table.
func (r *Router) Len() int {
	if r == nil {
		return 0
	}
	return r.routes
}

// add files rl under every host index it belongs to. Rules arrive in rank
// order, so every list they are appended to stays sorted by rank.
func (r *Router) add(rl *rule) {
	if len(rl.hosts) == 0 {
		if r.anyHost == nil {
			r.anyHost = &table{}
		}
		r.anyHost.add(rl)
		return
	}
	for _, h := range rl.hosts {
		switch {
		case strings.HasPrefix(h, "*."):
			r.suffix = tableFor(r.suffix, h[1:])
			r.suffix[h[1:]].add(rl)
			r.suffixLens.add(len(h) - 1)
		case strings.HasSuffix(h, ".*"):
			r.prefix = tableFor(r.prefix, h[:len(h)-1])
			r.prefix[h[:len(h)-1]].add(rl)
			r.prefixLens.add(len(h) - 1)
		default:
			r.exact = tableFor(r.exact, h)
			r.exact[h].add(rl)
		}
	}
}

// tableFor returns m, allocated if nil, with a table under key.
func tableFor(m map[string]*table, key string) map[string]*table {
	if m == nil {
		m = make(map[string]*table)
	}
	if m[key] == nil {
		m[key] = &table{}
	}
	return m
}

// lengths is a set of string lengths; every length from 255 up counts as
// 255.
type lengths [4]uint64

func (l *lengths) add(n int) {
	n = min(n, 255)
	l[n/64] |= 1 << (n % 64)
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
