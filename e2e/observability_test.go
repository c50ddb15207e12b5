package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/dashboards"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// kongDashboard is Grafana dashboard 7424, Kong (official), as Kong ships
// it, from the reference material checked out beside the repository
// (../shared; CI lays a copy there).
var kongDashboard = filepath.Join("..", "..", "shared", "reference", "kong-official-grafana-dashboard.json")

// prometheusBinary returns SLUICE_TEST_PROMETHEUS, skipping the test when
// it is unset (failing on CI).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin := testenv.Var(t, "SLUICE_TEST_PROMETHEUS",
		"install the Debian prometheus package and export SLUICE_TEST_PROMETHEUS=/usr/bin/prometheus")
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs a real Prometheus scraping targets (host:port of
// status listeners) every second as job "sluice" and returns its URL.
func startPrometheus(t *testing.T, bin string, targets []string) string {
	t.Helper()
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}
scrape_configs:
  - job_name: sluice
    static_configs: [{targets: [%s]}]
`, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", out)
		}
	})
	base := "http://" + addr
	waitFor(t, 20*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

// promResult is the part of /api/v1/query's answer the test reads.
type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// promQuery runs expr and returns the answer and the number of samples
// (1 for a scalar or string).
func promQuery(t *testing.T, base, expr string) (promResult, int) {
	t.Helper()
	var r promResult
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %s: cannot decode the answer: %v", expr, err)
	}
	switch r.Data.ResultType {
	case "vector", "matrix":
		var rows []json.RawMessage
		_ = json.Unmarshal(r.Data.Result, &rows)
		return r, len(rows)
	case "scalar", "string":
		return r, 1
	}
	return r, 0
}

// promScalar returns the single value of a one-sample vector query, or -1.
func promScalar(t *testing.T, base, expr string) float64 {
	t.Helper()
	r, n := promQuery(t, base, expr)
	if r.Status != "success" || n != 1 {
		return -1
	}
	var rows []struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result, &rows); err != nil || len(rows) != 1 {
		return -1
	}
	s, _ := rows[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v
}

// TestDashboardsOnLivePrometheus runs every panel query of our dashboards
// and of Kong's official one against a real Prometheus scraping two real
// nodes with prometheus_kong_compat on, after traffic that exercises every
// family.
func TestDashboardsOnLivePrometheus(t *testing.T) {
	promBin := prometheusBinary(t)
	sluiceBinary(t) // built before the clock starts
	start := time.Now()
	phase := func(what string) { t.Logf("%-28s at %v", what, time.Since(start).Round(100*time.Millisecond)) }
	up := upstream(t)
	c := startCluster(t, 2, "SLUICE_PROMETHEUS_KONG_COMPAT=on", "SLUICE_DB_UPDATE_FREQUENCY=0.5")
	a, b := c.Nodes[0], c.Nodes[1]
	var targets []string
	for _, n := range c.Nodes {
		targets = append(targets, strings.TrimPrefix(n.StatusURL, "http://"))
	}
	prom := startPrometheus(t, promBin, targets)
	phase("cluster and prometheus up")

	driveTraffic(t, a, b, up.URL)
	waitFor(t, 30*time.Second, "both nodes scraped", func() bool {
		return promScalar(t, prom, `sum(up{job="sluice"})`) == 2
	})
	phase("traffic and first scrapes")
	// Every series, including those the traffic created, needs three
	// scrapes so that rate() and irate() have samples in their window:
	// three scrapes of each node since the traffic ended.
	trafficDone := time.Now()
	waitFor(t, 30*time.Second, "three scrapes of every series", func() bool {
		window := int(time.Since(trafficDone).Seconds())
		return promScalar(t, prom, fmt.Sprintf(`min(count_over_time(up{job="sluice"}[%ds]))`, max(window, 1))) >= 3
	})
	// Traffic in the last scrapes too, so that irate() sees a change.
	driveHits(t, a, b, 20)
	time.Sleep(2500 * time.Millisecond)
	phase("three scrapes after traffic")

	files, err := filepath.Glob(filepath.Join(moduleDir(t), "dashboards", "grafana", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	if _, err := os.Stat(kongDashboard); err != nil {
		t.Fatalf("Kong's official dashboard is missing (../shared beside the repository): %v", err)
	}
	files = append(files, kongDashboard)
	total := 0
	for _, f := range files {
		qs, err := dashboards.Queries(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) == 0 {
			t.Errorf("%s: no panel queries", f)
		}
		for _, q := range qs {
			total++
			r, n := promQuery(t, prom, q.Expr)
			switch {
			case r.Status != "success":
				t.Errorf("%s / panel %q: status %s: %s\n  %s", q.Dashboard, q.Panel, r.Status, r.Error, q.Expr)
			case n == 0:
				t.Errorf("%s / panel %q: empty result\n  %s", q.Dashboard, q.Panel, q.Expr)
			}
		}
	}
	t.Logf("%d panel queries on %d dashboards, every one with data", total, len(files))

	promtoolCheckMetrics(t, promBin, a)
}

// driveTraffic creates services, routes and plugins on node A and sends
// hits, misses, unknown API keys, an upstream failure and a 404, and
// changes a plugin on A that node B must see.
func driveTraffic(t *testing.T, a, b *harness.Node, upURL string) {
	t.Helper()
	ctx := context.Background()
	admin(t, a, "POST", "/services", form("name", "orders", "url", upURL), 201)
	admin(t, a, "POST", "/services/orders/routes", form("name", "orders-route", "paths[]", "/orders"), 201)
	admin(t, a, "POST", "/services", form("name", "keyed", "url", upURL), 201)
	admin(t, a, "POST", "/services/keyed/routes", form("name", "keyed-route", "paths[]", "/keyed"), 201)
	admin(t, a, "POST", "/services", form("name", "broken", "url", fmt.Sprintf("http://127.0.0.1:%d", freePort(t))), 201)
	admin(t, a, "POST", "/services/broken/routes", form("name", "broken-route", "paths[]", "/broken"), 201)
	admin(t, a, "POST", "/consumers", form("username", "alice"), 201)
	admin(t, a, "POST", "/consumers/alice/key-auth", form("key", "alice-secret"), 201)
	// The plugin change on A, seen by B through a cluster event.
	admin(t, a, "POST", "/services/keyed/plugins", form("name", "key-auth"), 201)
	waitFor(t, 5*time.Second, "key-auth on node B", func() bool {
		status, _, _ := b.Get(ctx, "/keyed", nil)
		return status == 401
	})
	for _, n := range []*harness.Node{a, b} {
		for i := range 5 {
			get(t, n, "/keyed", http.Header{"Apikey": {"alice-secret"}}, 200) // a miss, then hits
			get(t, n, "/keyed", http.Header{"Apikey": {fmt.Sprintf("unknown-%d", i%2)}}, 401)
			get(t, n, "/nowhere", nil, 404)
		}
		get(t, n, "/broken", nil, 502)
	}
	driveHits(t, a, b, 20)
}

func driveHits(t *testing.T, a, b *harness.Node, n int) {
	t.Helper()
	for i := range n {
		for _, nd := range []*harness.Node{a, b} {
			get(t, nd, fmt.Sprintf("/orders/%d", i), nil, 200)
		}
	}
}

func get(t *testing.T, n *harness.Node, path string, h http.Header, want int) {
	t.Helper()
	status, body, err := n.Get(context.Background(), path, h)
	if err != nil || status != want {
		t.Fatalf("%s GET %s = %d %q, %v; want %d", n.Name, path, status, body, err, want)
	}
}

// promtoolCheckMetrics lints node n's /metrics with promtool. Kong's
// families keep Kong's names, which Prometheus' naming lint flags for the
// "ms" unit; those findings, and only those, are allowed.
func promtoolCheckMetrics(t *testing.T, promBin string, n *harness.Node) {
	t.Helper()
	promtool := filepath.Join(filepath.Dir(promBin), "promtool")
	if _, err := os.Stat(promtool); err != nil {
		if promtool, err = exec.LookPath("promtool"); err != nil {
			t.Fatalf("promtool not found next to %s nor on PATH", promBin)
		}
	}
	resp, err := http.Get(n.StatusURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Contains(body, []byte("kong_http_requests_total")) {
		t.Fatalf("read /metrics: %v (kong families present: %v)", err, bytes.Contains(body, []byte("kong_http_requests_total")))
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || kongNameByDesign(line) {
			continue
		}
		problems = append(problems, line)
	}
	if len(problems) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, strings.Join(problems, "\n"))
	}
}

// kongNameByDesign reports whether a promtool finding is about one of
// Kong's fixed names: kong_bandwidth_bytes is a counter without _total and
// the latency histograms are in milliseconds.
func kongNameByDesign(line string) bool {
	switch line {
	case `kong_bandwidth_bytes counter metrics should have "_total" suffix`,
		"kong_kong_latency_ms metric names should not contain abbreviated units",
		"kong_upstream_latency_ms metric names should not contain abbreviated units",
		"kong_request_latency_ms metric names should not contain abbreviated units":
		return true
	}
	return false
}

// moduleDir returns the repository root (the e2e tests run in e2e/).
func moduleDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}
