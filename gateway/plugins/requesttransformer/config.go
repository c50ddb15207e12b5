package requesttransformer

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is request-transformer's configuration with Kong's field names
// and defaults. Each list holds "name" (remove) or "name:value" strings;
// a value may hold templates (see template.go).
type Config struct {
	// HTTPMethod, when set, replaces the request's method (upper case
	// letters only). Changing it to GET, HEAD or TRACE moves a form body's
	// arguments into the query string, as Kong does.
	HTTPMethod *string `json:"http_method"`
	// Remove, Rename, Replace, Add and Append are applied in this order.
	Remove  Names       `json:"remove"`
	Rename  Pairs       `json:"rename"`
	Replace ReplacePair `json:"replace"`
	Add     Pairs       `json:"add"`
	Append  Pairs       `json:"append"`
}

// Names lists the headers, query arguments and body fields to remove.
type Names struct {
	Body        []string `json:"body" kong:"required"`
	Headers     []string `json:"headers" kong:"required"`
	Querystring []string `json:"querystring" kong:"required"`
}

// Pairs lists "name:value" pairs for headers, query arguments and body
// fields (for rename, "old:new").
type Pairs struct {
	Body        []string `json:"body" kong:"required"`
	Headers     []string `json:"headers" kong:"required"`
	Querystring []string `json:"querystring" kong:"required"`
}

// ReplacePair is Pairs plus URI, which replaces the whole upstream path.
type ReplacePair struct {
	Body        []string `json:"body" kong:"required"`
	Headers     []string `json:"headers" kong:"required"`
	Querystring []string `json:"querystring" kong:"required"`
	URI         *string  `json:"uri"`
}

func defaultConfig() Config {
	e := func() []string { return []string{} }
	return Config{
		Remove:  Names{Body: e(), Headers: e(), Querystring: e()},
		Rename:  Pairs{Body: e(), Headers: e(), Querystring: e()},
		Replace: ReplacePair{Body: e(), Headers: e(), Querystring: e()},
		Add:     Pairs{Body: e(), Headers: e(), Querystring: e()},
		Append:  Pairs{Body: e(), Headers: e(), Querystring: e()},
	}
}

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any {
	c := defaultConfig()
	return &c
}

var (
	// httpMethod is Kong's typedefs.http_method.
	httpMethod = regexp.MustCompile(`^[A-Z]+$`)
	// headerName is Kong's header_name: an RFC 7230 token.
	headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
)

// parseConfig applies Kong's defaults to raw, validates it and compiles
// the templates.
func parseConfig(raw json.RawMessage) (Config, *rules, error) {
	c := defaultConfig()
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return Config{}, nil, err
	}
	fe := plugins.FieldErrors{}
	if c.HTTPMethod != nil && !httpMethod.MatchString(*c.HTTPMethod) {
		fe["http_method"] = "invalid value: " + *c.HTTPMethod
	}
	r := &rules{}
	checkHeaderNames(fe, "remove.headers", c.Remove.Headers)
	r.remove = ops{body: c.Remove.Body, headers: c.Remove.Headers, query: c.Remove.Querystring}
	r.rename = compileOps(fe, "rename", c.Rename.Body, c.Rename.Headers, c.Rename.Querystring, true)
	r.replace = compileOps(fe, "replace", c.Replace.Body, c.Replace.Headers, c.Replace.Querystring, false)
	r.add = compileOps(fe, "add", c.Add.Body, c.Add.Headers, c.Add.Querystring, false)
	r.append = compileOps(fe, "append", c.Append.Body, c.Append.Headers, c.Append.Querystring, false)
	if c.Replace.URI != nil && *c.Replace.URI != "" {
		t, err := compileTemplate(*c.Replace.URI)
		if err != nil {
			fe["replace.uri"] = err.Error()
		}
		r.uri = &t
	}
	if c.HTTPMethod != nil {
		r.method = *c.HTTPMethod
	}
	if len(fe) > 0 {
		return Config{}, nil, fe
	}
	return c, r, nil
}

// checkHeaderNames checks remove's header names.
func checkHeaderNames(fe plugins.FieldErrors, field string, names []string) {
	for _, n := range names {
		if !headerName.MatchString(n) {
			fe[field] = fmt.Sprintf("'%s' is not a valid header", n)
		}
	}
}

// compileOps splits and compiles the "name:value" lists of one operation.
// For rename the value is the new name, not a template, and a header's
// new name must be a valid header name too.
func compileOps(fe plugins.FieldErrors, op string, body, headers, query []string, rename bool) ops {
	var o ops
	o.bodyPairs = compilePairs(fe, op+".body", body, false, rename)
	o.headerPairs = compilePairs(fe, op+".headers", headers, true, rename)
	o.queryPairs = compilePairs(fe, op+".querystring", query, false, rename)
	return o
}

func compilePairs(fe plugins.FieldErrors, field string, entries []string, header, rename bool) []pair {
	out := make([]pair, 0, len(entries))
	for _, e := range entries {
		name, value, ok := splitPair(e)
		switch {
		case !ok && header:
			fe[field] = fmt.Sprintf("invalid value: %s", e)
			continue
		case !ok || value == "":
			fe[field] = fmt.Sprintf("key '%s' has no value", name)
			continue
		case header && !headerName.MatchString(name):
			fe[field] = fmt.Sprintf("'%s' is not a valid header", name)
			continue
		case header && rename && !headerName.MatchString(value):
			fe[field] = fmt.Sprintf("'%s' is not a valid header", value)
			continue
		}
		p := pair{name: name}
		if rename {
			p.value = template{parts: []part{{lit: value}}}
		} else {
			t, err := compileTemplate(value)
			if err != nil {
				fe[field] = err.Error()
				continue
			}
			p.value = t
		}
		out = append(out, p)
	}
	return out
}

// splitPair splits "name:value" as Kong's pattern ^([^:]+):*(.-)$ does:
// the name is everything before the first colon, the value what follows
// the colons after it. ok is false without a name or a colon.
func splitPair(s string) (name, value string, ok bool) {
	name, value, found := strings.Cut(s, ":")
	if name == "" || !found {
		return name, "", false
	}
	return name, strings.TrimLeft(value, ":"), true
}
