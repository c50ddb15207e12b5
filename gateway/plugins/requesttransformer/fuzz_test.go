package requesttransformer

import (
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

// FuzzTemplate: compiling any value either fails with an error or gives a
// template whose literal parts, rendered, are all of the text outside
// $(...) (no panic, nothing invented).
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"plain", "$(headers.x_a)", `a$(headers["x-b"] or 'd')b`, "$(query_params.q)",
		"$(uri_captures.id)", "$(", "$()", "$(headers.a", `$(headers[")"])`, "x$(query_params['p'] or \"z\")y$(headers.h)"} {
		f.Add(s)
	}
	req := plugintest.New("GET", "/?q=1", map[string]string{"X-A": "va"}, nil)
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := compileTemplate(s)
		if err != nil {
			return
		}
		out := tpl.render(req)
		if !strings.Contains(s, "$(") && out != s {
			t.Fatalf("literal %q rendered as %q", s, out)
		}
	})
}

// FuzzArgs: parsing then encoding a query string keeps every argument
// name and value.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{"a=1&b=2", "flag&x=%20y", "a=1&a=2&&=", "%zz=1", "k=v+w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := parseArgs(s)
		b := parseArgs(a.encode())
		if len(a) != len(b) {
			t.Fatalf("%q: %d args, re-encoded %q has %d", s, len(a), a.encode(), len(b))
		}
		for _, x := range a {
			if !b.has(x.name) {
				t.Fatalf("%q: %q lost in %q", s, x.name, a.encode())
			}
		}
	})
}
