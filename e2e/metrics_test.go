package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

// perRouteFamilies are the families labelled by service and route, with
// prometheus_kong_compat on.
var perRouteFamilies = []string{
	"sluice_http_requests_total", "sluice_request_duration_seconds", "sluice_upstream_duration_seconds",
	"kong_http_requests_total", "kong_bandwidth_bytes", "kong_kong_latency_ms",
	"kong_upstream_latency_ms", "kong_request_latency_ms",
}

// TestMetricsOfDeletedRoutesPruned: node B exports series for the routes
// it served; once A's deletion of a route and renames of a route and its
// service have reached B, B's /metrics lists no series under the old
// labels, and the renamed route's series under the new ones.
func TestMetricsOfDeletedRoutesPruned(t *testing.T) {
	up := upstream(t)
	c := startCluster(t, 2, "SLUICE_PROMETHEUS_KONG_COMPAT=on", "SLUICE_DB_UPDATE_FREQUENCY=0.5")
	a, b := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()

	admin(t, a, "POST", "/services", form("name", "orders", "url", up.URL), 201)
	admin(t, a, "POST", "/services/orders/routes", form("name", "gone", "paths[]", "/gone"), 201)
	admin(t, a, "POST", "/services/orders/routes", form("name", "kept", "paths[]", "/kept"), 201)
	waitFor(t, 5*time.Second, "both routes on node B", func() bool {
		s1, _, _ := b.Get(ctx, "/gone", nil)
		s2, _, _ := b.Get(ctx, "/kept", nil)
		return s1 == 200 && s2 == 200
	})
	before := perRouteSeries(t, b)
	for _, pair := range []string{"orders/gone", "orders/kept"} {
		if got := len(before[pair]); got != len(perRouteFamilies) {
			t.Fatalf("before the changes, %s is in %d per-route families (%v), want all %d",
				pair, got, before[pair], len(perRouteFamilies))
		}
	}

	admin(t, a, "DELETE", "/routes/gone", nil, 204)
	admin(t, a, "PATCH", "/routes/kept", form("name", "renamed"), 200)
	admin(t, a, "PATCH", "/services/orders", form("name", "shop"), 200)
	var after map[string][]string
	waitFor(t, 5*time.Second, "the renamed route's series on node B", func() bool {
		get(t, b, "/kept", nil, 200)
		after = perRouteSeries(t, b)
		return len(after["shop/renamed"]) == len(perRouteFamilies)
	})
	get(t, b, "/gone", nil, 404)
	after = perRouteSeries(t, b)
	for pair, fams := range after {
		if pair != "shop/renamed" && pair != "/" {
			t.Errorf("node B still exports %s in %v after its route was deleted or renamed", pair, fams)
		}
	}
}

// perRouteSeries scrapes n's status /metrics and returns, for each
// "service/route" label pair, the families that have a series for it.
func perRouteSeries(t *testing.T, n *harness.Node) map[string][]string {
	t.Helper()
	resp, err := http.Get(n.StatusURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	seen := make(map[string]map[string]bool)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, labels, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		service, route := label(labels, "service"), label(labels, "route")
		if !strings.Contains(labels, `route="`) {
			continue
		}
		pair := service + "/" + route
		if seen[pair] == nil {
			seen[pair] = make(map[string]bool)
		}
		seen[pair][name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]string, len(seen))
	for pair, fams := range seen {
		for f := range fams {
			out[pair] = append(out[pair], f)
		}
	}
	return out
}

// label returns the value of name in a text-format label set, "" if absent.
func label(labels, name string) string {
	for _, kv := range strings.Split(labels, ",") {
		if v, ok := strings.CutPrefix(kv, name+`="`); ok {
			v, _, _ = strings.Cut(v, `"`)
			return v
		}
	}
	return ""
}
