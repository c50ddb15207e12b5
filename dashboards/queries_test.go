package dashboards

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/testenv"
)

// kongDashboard is Grafana dashboard 7424, Kong (official), from the
// reference material checked out beside the repository (../shared).
var kongDashboard = filepath.Join("..", "..", "shared", "reference", "kong-official-grafana-dashboard.json")

func TestExpand(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"rate interval", `rate(x[$__rate_interval])`, `rate(x[1m])`},
		{"braced rate interval", `rate(x[${__rate_interval}])`, `rate(x[1m])`},
		{"interval and range", `avg_over_time(x[$__interval]) / $__range_s + increase(y[$__range])`, `avg_over_time(x[1m]) / 300 + increase(y[5m])`},
		{"interval_ms keeps suffix", `x * $__interval_ms`, `x * 60000`},
		{"equal matcher", `x{instance="$instance"}`, `x{instance=~".+"}`},
		{"regex matcher", `x{service=~"$service", route=~"${route}"}`, `x{service=~".+", route=~".+"}`},
		{"format and old syntax", `x{upstream=~"${upstream:regex}", a="[[a]]"}`, `x{upstream=~".+", a=~".+"}`},
		{"not equal", `x{code!="$code"}`, `x{code!~".+"}`},
		{"prefix kept", `x{route="api-$route"}`, `x{route=~"api-.+"}`},
		{"literal untouched", `x{code="200", job=~"sl.*"}`, `x{code="200", job=~"sl.*"}`},
		{"label_replace group", `label_replace(x, "a", "$1", "b", "(.*)")`, `label_replace(x, "a", "$1", "b", "(.*)")`},
		{"custom range", `rate(x[$window])`, `rate(x[1m])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expand(tt.in); got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestQueriesGenerated(t *testing.T) {
	for _, f := range generated(t) {
		t.Run(f.Name, func(t *testing.T) {
			qs, err := Queries(filepath.Join("grafana", f.Name))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Count(string(f.JSON), `"expr":`)
			if len(qs) != want {
				t.Errorf("Queries found %d expressions, the file has %d", len(qs), want)
			}
			for _, q := range qs {
				if q.Dashboard == "" || q.Panel == "" {
					t.Errorf("query without dashboard or panel title: %+v", q)
				}
				if strings.Contains(q.Expr, "$") {
					t.Errorf("panel %q: variable left in %q", q.Panel, q.Expr)
				}
				if _, err := MetricNames(q.Expr); err != nil {
					t.Errorf("panel %q: %v", q.Panel, err)
				}
			}
		})
	}
}

func TestQueriesKongOfficial(t *testing.T) {
	if _, err := os.Stat(kongDashboard); err != nil {
		testenv.Missing(t, "Kong's official dashboard", "check out ../shared beside the repository: "+err.Error())
	}
	qs, err := Queries(kongDashboard)
	if err != nil {
		t.Fatal(err)
	}
	// The file has 6 collapsed rows; every query sits in a nested panel.
	raw, err := os.ReadFile(kongDashboard)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Count(string(raw), `"expr":`); len(qs) != want || want < 30 {
		t.Errorf("Queries found %d expressions, the file has %d", len(qs), want)
	}
	t.Logf("%d queries in Kong's official dashboard", len(qs))
	panels := map[string]bool{}
	for _, q := range qs {
		panels[q.Panel] = true
		if q.Dashboard != "Kong (official)" {
			t.Errorf("dashboard title = %q", q.Dashboard)
		}
		if strings.Contains(q.Expr, "$") && !strings.Contains(q.Expr, `"$1"`) {
			t.Errorf("panel %q: variable left in %q", q.Panel, q.Expr)
		}
		names, err := MetricNames(q.Expr)
		if err != nil {
			t.Errorf("panel %q: %v", q.Panel, err)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "kong_") {
				t.Errorf("panel %q uses non-Kong metric %s", q.Panel, n)
			}
		}
	}
	if len(panels) < 20 {
		t.Errorf("queries come from only %d panels", len(panels))
	}
}

func TestQueriesErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path string }{
		{"missing file", filepath.Join(dir, "missing.json")},
		{"not json", bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Queries(tt.path); err == nil {
				t.Errorf("Queries(%s) succeeded", tt.path)
			}
		})
	}
}
