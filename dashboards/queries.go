package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Query is one PromQL target of a dashboard panel, with Grafana variables
// already replaced so that Prometheus can run it as is.
type Query struct {
	Dashboard string // dashboard title
	Panel     string // panel title
	Expr      string // expression after variable substitution
}

// Queries reads the Grafana dashboard JSON file at path and returns the
// expression of every panel target that has one, in panel order, including
// panels nested in collapsed rows and the "rows" of pre-5.0 dashboards.
// Variables are substituted as described on [Expand].
func Queries(path string) ([]Query, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dashboards: %w", err)
	}
	var d jsonDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("dashboards: cannot decode %s: %w", path, err)
	}
	var qs []Query
	var walk func([]jsonPanel)
	walk = func(ps []jsonPanel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) != "" {
					qs = append(qs, Query{Dashboard: d.Title, Panel: p.Title, Expr: Expand(t.Expr)})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, r := range d.Rows {
		walk(r.Panels)
	}
	return qs, nil
}

// Expand replaces Grafana variables in a PromQL expression with values that
// Prometheus accepts:
//   - $__rate_interval and $__interval (also as ${...}) become 1m, $__range
//     becomes 5m, and $__interval_ms, $__range_s and $__range_ms their numbers;
//   - inside a label matcher, any other variable ($instance, ${service},
//     ${route:regex}, [[upstream]]) becomes .+ and the matcher turns into a
//     regex match (= to =~, != to !~);
//   - a custom variable left elsewhere, such as a range [$window], becomes 1m.
func Expand(expr string) string {
	expr = builtinVars.Replace(expr)
	expr = matcher.ReplaceAllStringFunc(expr, func(m string) string {
		sub := matcher.FindStringSubmatch(m)
		name, op, value := sub[1], sub[2], sub[3]
		if !customVar.MatchString(value) {
			return m
		}
		value = customVar.ReplaceAllString(value, ".+")
		switch op {
		case "=":
			op = "=~"
		case "!=":
			op = "!~"
		}
		return fmt.Sprintf(`%s%s"%s"`, name, op, value)
	})
	return customVar.ReplaceAllString(expr, "1m")
}

// builtinVars replaces Grafana's global time variables. Longer names come
// first so that $__interval does not eat the prefix of $__interval_ms.
var builtinVars = strings.NewReplacer(
	"${__rate_interval}", "1m", "$__rate_interval", "1m",
	"${__interval_ms}", "60000", "$__interval_ms", "60000",
	"${__interval}", "1m", "$__interval", "1m",
	"${__range_ms}", "300000", "$__range_ms", "300000",
	"${__range_s}", "300", "$__range_s", "300",
	"${__range}", "5m", "$__range", "5m",
)

// matcher finds label matchers with a double-quoted value.
var matcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)

// customVar finds a dashboard variable in any of Grafana's three syntaxes.
var customVar = regexp.MustCompile(`\$\{[a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z]+)?\}|\$[a-zA-Z_][a-zA-Z0-9_]*|\[\[[a-zA-Z_][a-zA-Z0-9_]*\]\]`)

// jsonDashboard is the part of a dashboard file that Queries reads; it
// accepts every schema version, unlike the SDK's strict types.
type jsonDashboard struct {
	Title  string      `json:"title"`
	Panels []jsonPanel `json:"panels"`
	Rows   []struct {
		Panels []jsonPanel `json:"panels"`
	} `json:"rows"`
}

// jsonPanel is a panel or a row; rows carry their collapsed panels.
type jsonPanel struct {
	Title   string      `json:"title"`
	Targets []jsonQuery `json:"targets"`
	Panels  []jsonPanel `json:"panels"`
}

// jsonQuery is one panel target.
type jsonQuery struct {
	Expr string `json:"expr"`
}
