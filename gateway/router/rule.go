package router

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// pathKind says how a rule matches the request path.
type pathKind uint8

const (
	anyPath    pathKind = iota // route has no paths
	prefixPath                 // plain prefix
	regexPath                  // "~" regex, anchored at the start
)

// rule is one route restricted to one of its paths: like Kong's
// traditional_compatible flavor, a route with several paths is split so
// that each path is ranked on its own.
type rule struct {
	route   *entity.Route
	service *entity.Service

	hosts   []string // lowercased, without port
	methods []string
	headers []headerRule
	kind    pathKind
	path    string // normalized prefix (prefixPath)
	re      *regexp.Regexp
	// key places the rule in a table's tree: the prefix, the regex's
	// literal prefix, or "" (the root).
	key string

	// Priority inputs, in tie-break order.
	weight     int  // number of configured fields among hosts, headers, methods, paths
	plainHosts bool // has hosts and none is a wildcard
	pathIndex  int  // position of path in route.Paths, for a stable order
}

// headerRule requires one request header to equal one of values, ignoring
// case.
type headerRule struct {
	name   string // canonical MIME header key
	values []string
}

// compile turns a route into one rule per path (one rule when it has none).
func compile(rt *entity.Route, svc *entity.Service) ([]*rule, error) {
	base := rule{route: rt, service: svc, methods: rt.Methods}
	var err error
	if base.hosts, err = compileHosts(rt.Hosts); err != nil {
		return nil, err
	}
	if base.headers, err = compileHeaders(rt.Headers); err != nil {
		return nil, err
	}
	base.plainHosts = len(base.hosts) > 0
	for _, h := range base.hosts {
		if strings.Contains(h, "*") {
			base.plainHosts = false
		}
	}
	for _, n := range []int{len(rt.Hosts), len(rt.Headers), len(rt.Methods), len(rt.Paths)} {
		if n > 0 {
			base.weight++
		}
	}
	if len(rt.Paths) == 0 {
		rl := base
		return []*rule{&rl}, nil
	}
	rules := make([]*rule, 0, len(rt.Paths))
	for i, p := range rt.Paths {
		rl := base
		rl.pathIndex = i
		if err := rl.compilePath(p); err != nil {
			return nil, err
		}
		rules = append(rules, &rl)
	}
	return rules, nil
}

// compilePath sets the rule's path matcher from one of route.paths.
func (rl *rule) compilePath(p string) error {
	if pattern, ok := strings.CutPrefix(p, "~"); ok {
		re, err := regexp.Compile(`^(?:` + pattern + `)`)
		if err != nil {
			return fmt.Errorf("invalid regex path %q: %w", p, err)
		}
		rl.kind, rl.re, rl.key = regexPath, re, literalPrefix(re)
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with / (or ~ for a regex)", p)
	}
	rl.kind, rl.path = prefixPath, Normalize(p)
	rl.key = rl.path
	return nil
}

// literalPrefix returns a string every match of re starts with, possibly
// empty. It is exact where regexp's LiteralPrefix gives up (captures,
// one-pass programs), which lets most regex routes sit deep in the tree.
func literalPrefix(re *regexp.Regexp) string {
	tree, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return ""
	}
	var b strings.Builder
	var walk func(*syntax.Regexp) bool // reports whether re was all literal
	walk = func(re *syntax.Regexp) bool {
		switch re.Op {
		case syntax.OpBeginText, syntax.OpEmptyMatch:
			return true
		case syntax.OpLiteral:
			if re.Flags&syntax.FoldCase != 0 || slices.Contains(re.Rune, utf8.RuneError) {
				return false
			}
			b.WriteString(string(re.Rune))
			return true
		case syntax.OpCapture:
			return walk(re.Sub[0])
		case syntax.OpConcat:
			for _, sub := range re.Sub {
				if !walk(sub) {
					return false
				}
			}
			return true
		}
		return false
	}
	walk(tree)
	return b.String()
}

// compileHosts lowercases hosts, drops ports and checks wildcards.
func compileHosts(hosts []string) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		k := strings.ToLower(stripPort(h))
		if k == "" {
			return nil, errors.New("empty host")
		}
		if n := strings.Count(k, "*"); n > 0 {
			ok := n == 1 && (strings.HasPrefix(k, "*.") && len(k) > 2 ||
				strings.HasSuffix(k, ".*") && len(k) > 2)
			if !ok {
				return nil, fmt.Errorf("invalid wildcard host %q: only one * in the leftmost or rightmost label", h)
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// compileHeaders canonicalizes header names and checks the rules Kong's
// schema enforces.
func compileHeaders(headers map[string][]string) ([]headerRule, error) {
	out := make([]headerRule, 0, len(headers))
	for name, values := range headers {
		if strings.EqualFold(name, "host") {
			return nil, errors.New("header host is not allowed in headers, use hosts")
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("header %q has no values", name)
		}
		out = append(out, headerRule{name: textproto.CanonicalMIMEHeaderKey(name), values: values})
	}
	return out, nil
}

// before reports whether rl outranks o: more configured fields, plain hosts
// only, more headers, regex over prefix (then higher regex_priority), longer
// prefix, older route, then route id and path position for a stable order.
func (rl *rule) before(o *rule) bool {
	switch {
	case rl.weight != o.weight:
		return rl.weight > o.weight
	case rl.plainHosts != o.plainHosts:
		return rl.plainHosts
	case len(rl.headers) != len(o.headers):
		return len(rl.headers) > len(o.headers)
	case (rl.kind == regexPath) != (o.kind == regexPath):
		return rl.kind == regexPath
	case rl.kind == regexPath && rl.route.RegexPriority != o.route.RegexPriority:
		return rl.route.RegexPriority > o.route.RegexPriority
	case len(rl.path) != len(o.path):
		return len(rl.path) > len(o.path)
	case rl.route.CreatedAt != o.route.CreatedAt:
		return rl.route.CreatedAt < o.route.CreatedAt
	case rl.route.ID != o.route.ID:
		return rl.route.ID < o.route.ID
	}
	return rl.pathIndex < o.pathIndex
}

// matchRest reports whether method and header satisfy the rule's methods
// and headers (hosts and paths are checked by the indexes).
func (rl *rule) matchRest(method string, header Header) bool {
	if len(rl.methods) > 0 && !contains(rl.methods, method) {
		return false
	}
	for i := range rl.headers {
		if !rl.headers[i].match(header) {
			return false
		}
	}
	return true
}

// match reports whether any value of the request header equals one of the
// rule's values, ignoring case.
func (h *headerRule) match(header Header) bool {
	if header == nil {
		return false
	}
	for _, got := range header.Values(h.name) {
		for _, want := range h.values {
			if strings.EqualFold(got, want) {
				return true
			}
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
