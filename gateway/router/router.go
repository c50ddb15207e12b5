// Package router matches requests to routes. A Router is an immutable
// snapshot built from every route and its service; the proxy holds the
// current one in an atomic pointer and a rebuild swaps in a new one, so
// readers never lock and a route change never stalls requests.
package router

import (
	"net/http"

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
	// path prefix, or the whole regex match.
	Prefix string
}

// Router is an immutable route table. It is safe for concurrent use.
type Router struct {
	// implementation pending (router helper)
}

// New builds a Router from targets. Routes whose paths cannot be compiled
// are left out, and the returned error (errors.Join of one error per route,
// naming the route) says which; the Router is usable either way.
// New does not retain targets' slice but keeps the pointed-to entities,
// which callers must not modify afterwards.
func New(targets []Target) (*Router, error) {
	panic("router: not implemented")
}

// Match returns the route that matches a request with this method, host
// (port already removed or not: Match ignores a ":port" suffix), path (the
// raw request path, without the query) and header. It reports false when
// no route matches. It does not allocate.
func (r *Router) Match(method, host, path string, header http.Header) (Match, bool) {
	panic("router: not implemented")
}

// Len returns the number of routes in the table.
func (r *Router) Len() int { panic("router: not implemented") }

// UpstreamPath returns the path to send upstream for a request whose path
// was matched by m: strip_path removes m.Prefix, then path_handling ("v0" or
// "v1") joins the service's path and the remainder as Kong does.
func (m Match) UpstreamPath(path string) string { panic("router: not implemented") }
