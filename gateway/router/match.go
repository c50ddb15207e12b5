package router

import (
	"strings"
)

// Header is what Match needs of a request's headers. http.Header
// implements it.
type Header interface {
	// Values returns the values of header name (canonical form).
	Values(name string) []string
}

// Match returns the route that matches a request with this method, host
// (port already removed or not: Match ignores a ":port" suffix), path (the
// raw request path, without the query) and header (nil means no headers). It reports false when no
// route matches, and always on a nil Router.
//
// Match does not allocate when the path is already normalized (see
// Normalize) and the host is lowercase; otherwise it allocates the
// normalized copies. A winning regex route costs one small allocation for
// the match bounds.
func (r *Router) Match(method, host, path string, header Header) (Match, bool) {
	if r == nil {
		return Match{}, false
	}
	if path == "" {
		path = "/"
	}
	path = Normalize(path)
	host = hostKey(host)
	var best *rule
	if host != "" {
		if t := r.exact.get(host); t != nil {
			best = t.best(method, path, header, best)
		}
		best = r.wildcards(method, host, path, header, best)
	}
	if r.anyHost != nil {
		best = r.anyHost.best(method, path, header, best)
	}
	if best == nil {
		return Match{}, false
	}
	return best.result(path), true
}

// wildcards returns the best rule among the wildcard-host tables that host
// falls under, or cur when it outranks them.
func (r *Router) wildcards(method, host, path string, header Header, cur *rule) *rule {
	if r.suffixLens == (lengths{}) && r.prefixLens == (lengths{}) {
		return cur
	}
	// The wildcard stands for at least one character, so the dot at index 0
	// or at the end never starts or ends a key.
	for i := 1; i < len(host)-1; i++ {
		if host[i] != '.' {
			continue
		}
		if r.suffixLens.has(len(host) - i) {
			if t := r.suffix.get(host[i:]); t != nil {
				cur = t.best(method, path, header, cur)
			}
		}
		if r.prefixLens.has(i + 1) {
			if t := r.prefix.get(host[:i+1]); t != nil {
				cur = t.best(method, path, header, cur)
			}
		}
	}
	return cur
}

// result builds the Match for a request path that rl matched.
func (rl *rule) result(path string) Match {
	m := Match{Route: rl.route, Service: rl.service}
	switch rl.kind {
	case prefixPath:
		m.Prefix = rl.path
	case regexPath:
		if loc := rl.re.FindStringIndex(path); loc != nil {
			m.Prefix = path[:loc[1]]
		}
	}
	return m
}

// hostKey returns host lowercased and without a ":port" suffix. It
// allocates only when host has uppercase letters.
func hostKey(host string) string {
	host = stripPort(host)
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// stripPort removes a ":port" suffix from host, keeping IPv6 literals
// ("[::1]:80" becomes "[::1]") intact.
func stripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host
	}
	if strings.HasPrefix(host, "[") {
		if j := strings.LastIndexByte(host, ']'); j >= 0 && j < i {
			return host[:j+1]
		}
		return host
	}
	if strings.IndexByte(host[:i], ':') >= 0 {
		return host // bare IPv6 address without port
	}
	return host[:i]
}
