package requesttransformer

import (
	"net/url"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// arg is one name=value pair of a query string or URL-encoded form; flag
// is true for a bare name ("?debug"), which Kong keeps as a flag.
type arg struct {
	name, value string
	flag        bool
}

type args []arg

// parseArgs decodes a query string or form body ('+' is a space).
// Malformed escapes are kept as sent.
func parseArgs(s string) args {
	var out args
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		out = append(out, arg{name: unescape(k), value: unescape(v), flag: !hasValue})
	}
	return out
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// escape is ngx.escape_uri's encoding as ngx.encode_args uses it: spaces
// as %20.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// encode returns the arguments sorted by name (stable), as Kong's
// set_query sends them.
func (a args) encode() string {
	sorted := slices.Clone(a)
	slices.SortStableFunc(sorted, func(x, y arg) int { return strings.Compare(x.name, y.name) })
	var b strings.Builder
	for i, x := range sorted {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escape(x.name))
		if !x.flag {
			b.WriteByte('=')
			b.WriteString(escape(x.value))
		}
	}
	return b.String()
}

func (a args) has(name string) bool {
	return slices.ContainsFunc(a, func(x arg) bool { return x.name == name })
}

func (a args) without(name string) args {
	return slices.DeleteFunc(a, func(x arg) bool { return x.name == name })
}

// selector picks the query or the body part of an operation.
type selector func(o *ops) (names []string, pairs []pair)

func selectQuery(o *ops) ([]string, []pair) { return o.query, o.queryPairs }
func selectBody(o *ops) ([]string, []pair)  { return o.body, o.bodyPairs }

// apply runs remove, rename, replace, add and append on a. existing is
// false for an empty body, where Kong only adds and appends.
func (a args) apply(r *rules, req plugins.Request, sel selector, existing bool) args {
	if existing {
		names, _ := sel(&r.remove)
		for _, n := range names {
			a = a.without(n)
		}
		_, pairs := sel(&r.rename)
		for _, p := range pairs {
			newName, _ := p.value.literal()
			if p.name == newName || !a.has(p.name) {
				continue
			}
			a = a.without(newName)
			for i := range a {
				if a[i].name == p.name {
					a[i].name = newName
				}
			}
		}
		_, pairs = sel(&r.replace)
		for _, p := range pairs {
			if a.has(p.name) {
				a = append(a.without(p.name), arg{name: p.name, value: p.value.render(req)})
			}
		}
	}
	_, pairs := sel(&r.add)
	for _, p := range pairs {
		if !a.has(p.name) {
			a = append(a, arg{name: p.name, value: p.value.render(req)})
		}
	}
	_, pairs = sel(&r.append)
	for _, p := range pairs {
		a = append(a, arg{name: p.name, value: p.value.render(req)})
	}
	return a
}
