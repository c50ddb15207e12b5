package requesttransformer

import (
	"errors"
	"regexp"
	"strings"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Kong renders values as Penlight templates whose $(...) expressions are
// sandboxed Lua. Sluice runs no Lua: it compiles the expressions that read
// the request, and refuses every other one when the config is validated
// rather than passing it through literally:
//
//	$(headers.x_api_version)      a request header ('_' stands for '-')
//	$(headers["x-api-version"])   the same, any name
//	$(query_params.page)          a query argument, also query_params["page"]
//	$(headers.x or "default")     a fallback when the value is missing
//
// A missing value without a fallback renders as "". uri_captures and
// shared are not available to plugins here.

// template is a compiled value: literal text and lookups.
type template struct {
	parts []part
}

type part struct {
	lit      string // literal text, when src is 0
	src      byte   // 'h' header, 'q' query argument
	name     string
	fallback string
}

// literal reports whether t has no lookups, and its text.
func (t template) literal() (string, bool) {
	if len(t.parts) == 1 && t.parts[0].src == 0 {
		return t.parts[0].lit, true
	}
	if len(t.parts) == 0 {
		return "", true
	}
	return "", false
}

// render returns t's text for the request r as it is now.
func (t template) render(r plugins.Request) string {
	if s, ok := t.literal(); ok {
		return s
	}
	var b strings.Builder
	for _, p := range t.parts {
		var v string
		var ok bool
		switch p.src {
		case 0:
			b.WriteString(p.lit)
			continue
		case 'h':
			v, ok = r.Header(p.name)
		case 'q':
			v, ok = r.Query(p.name)
		}
		if !ok {
			v = p.fallback
		}
		b.WriteString(v)
	}
	return b.String()
}

var (
	errUnclosed = errors.New("template has an unclosed '$('")
	lookup      = regexp.MustCompile(`^(headers|query_params)(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\])(?:\s+or\s+(?:"([^"]*)"|'([^']*)'))?$`)
)

// compileTemplate compiles s, or explains why it cannot be rendered here.
func compileTemplate(s string) (template, error) {
	var t template
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: s[:i]})
		}
		end := closing(s[i+2:])
		if end < 0 {
			return template{}, errUnclosed
		}
		expr := strings.TrimSpace(s[i+2 : i+2+end])
		p, err := compileLookup(expr)
		if err != nil {
			return template{}, err
		}
		t.parts = append(t.parts, p)
		s = s[i+2+end+1:]
	}
	if s != "" || len(t.parts) == 0 {
		t.parts = append(t.parts, part{lit: s})
	}
	return t, nil
}

// closing returns the index of the ')' that closes an expression starting
// at s[0], skipping parentheses and quoted strings, or -1.
func closing(s string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

func compileLookup(expr string) (part, error) {
	m := lookup.FindStringSubmatch(expr)
	if m == nil {
		return part{}, errors.New("template expression $(" + expr + ") is not supported: only $(headers.<name>), " +
			`$(headers["<name>"]), $(query_params.<name>) and $(query_params["<name>"]), optionally followed by ` +
			`or "<default>", are (no Lua, no uri_captures)`)
	}
	p := part{src: 'h', fallback: m[5] + m[6]}
	if m[1] == "query_params" {
		p.src = 'q'
	}
	switch {
	case m[2] != "" && p.src == 'h':
		p.name = strings.ReplaceAll(m[2], "_", "-")
	case m[2] != "":
		p.name = m[2]
	default:
		p.name = m[3] + m[4]
	}
	return p, nil
}
