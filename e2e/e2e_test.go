// Package e2e tests the gateway as users meet it: real sluice node
// processes on loopback, driven through the Admin API and the proxy, with
// real httptest upstreams.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// sluiceBinary builds cmd/sluice once per test run.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary, buildErr = harness.Build(context.Background(), dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// startCluster starts n nodes with env and stops them at the end of t.
func startCluster(t *testing.T, n int, env ...string) *harness.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := harness.Start(ctx, harness.Options{Binary: sluiceBinary(t), Nodes: n, Dir: t.TempDir(), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// upstream is a real HTTP service that echoes the path it received.
func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("upstream saw " + r.URL.Path))
	}))
	t.Cleanup(s.Close)
	return s
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// admin sends an Admin API request to n and fails t unless it answers want.
func admin(t *testing.T, n *harness.Node, method, path string, body url.Values, want int) []byte {
	t.Helper()
	b, err := n.MustAdmin(context.Background(), method, path, body, want)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls check every millisecond until it returns true, and returns
// how long that took, failing t after limit.
func waitFor(t *testing.T, limit time.Duration, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !check() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not seen within %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestKongQuickstart is the README's first experience: the curl sequence
// from Kong's documentation against one node on the embedded default.
func TestKongQuickstart(t *testing.T) {
	up := upstream(t)
	c := startCluster(t, 1)
	a := c.Nodes[0]
	ctx := context.Background()

	admin(t, a, "POST", "/services", form("name", "example-service", "url", up.URL), 201)
	route := admin(t, a, "POST", "/services/example-service/routes", form("paths[]", "/example"), 201)
	status, body, err := a.Get(ctx, "/example/hello", nil)
	if err != nil || status != 200 || string(body) != "upstream saw /hello" {
		t.Fatalf("GET /example/hello = %d %q, %v; want 200 from the upstream with the path stripped", status, body, err)
	}
	id := jsonField(t, route, "id")
	admin(t, a, "DELETE", "/routes/"+id, nil, 204)
	status, body, err = a.Get(ctx, "/example/hello", nil)
	if err != nil || status != 404 || !strings.Contains(string(body), `"no Route matched with those values"`) {
		t.Fatalf("the very next request after DELETE = %d %q, %v; want Kong's 404", status, body, err)
	}
}

// backendEnv returns the node settings that select each cache backend.
// The redis backend needs the test Redis (SLUICE_TEST_REDIS, host:port).
func backendEnv(t *testing.T) map[string][]string {
	t.Helper()
	envs := map[string][]string{}
	for _, b := range []string{"freecache", "otter", "ristretto", "lru", "none"} {
		envs[b] = []string{"SLUICE_CACHE_BACKEND=" + b}
	}
	addr := os.Getenv("SLUICE_TEST_REDIS")
	switch {
	case addr != "":
		host, port, _ := strings.Cut(addr, ":")
		// The Redis level is shared by every node of one cluster, and by no
		// other cluster: each test's nodes get a prefix of their own.
		prefix := fmt.Sprintf("sluice-e2e-%d:", time.Now().UnixNano())
		envs["redis"] = []string{"SLUICE_CACHE_BACKEND=redis", "SLUICE_REDIS_HOST=" + host, "SLUICE_REDIS_PORT=" + port, "SLUICE_REDIS_PREFIX=" + prefix}
	case os.Getenv("CI") == "true":
		t.Fatal("SLUICE_TEST_REDIS is not set: CI must start Redis (bash tools/redis.sh start)")
	default:
		t.Log("redis backend skipped: start one with `bash tools/redis.sh start && eval \"$(bash tools/redis.sh env)\"`")
	}
	return envs
}

// forEachBackend runs fn once per cache backend, as a subtest.
func forEachBackend(t *testing.T, fn func(t *testing.T, backend string, env []string)) {
	for backend, env := range backendEnv(t) {
		t.Run(backend, func(t *testing.T) { fn(t, backend, env) })
	}
}

// TestTwoNodesConverge is the seed's scenario on two processes sharing one
// SQLite file, with every cache backend: a change on node A reaches node B
// within db_update_frequency (plus the poll's own cost).
func TestTwoNodesConverge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ string, env []string) { testTwoNodesConverge(t, env) })
}

func testTwoNodesConverge(t *testing.T, env []string) {
	const freq = time.Second
	up := upstream(t)
	c := startCluster(t, 2, append(env, "SLUICE_DB_UPDATE_FREQUENCY=1")...)
	a, b := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()
	limit := freq + time.Second // the poll's own cost, with -race on a loaded 2-core machine

	admin(t, a, "POST", "/services", form("name", "example-service", "url", up.URL), 201)
	route := admin(t, a, "POST", "/services/example-service/routes", form("paths[]", "/example", "name", "example-route"), 201)
	took := waitFor(t, limit, "new route on node B", func() bool {
		status, _, _ := b.Get(ctx, "/example", nil)
		return status == 200
	})
	t.Logf("route created on A answered by B after %v", took)

	// B now caches "this route has no plugin". A plugin added on A must
	// reach it.
	admin(t, a, "POST", "/services/example-service/plugins",
		form("name", "request-termination", "config.status_code", "418", "config.message", "teapot"), 201)
	if status, _, _ := a.Get(ctx, "/example", nil); status != 418 {
		t.Fatalf("node A answered %d right after its own write, want 418 at once", status)
	}
	took = waitFor(t, limit, "plugin on node B", func() bool {
		status, _, _ := b.Get(ctx, "/example", nil)
		return status == 418
	})
	t.Logf("plugin added on A applied by B after %v", took)

	admin(t, a, "DELETE", "/routes/"+jsonField(t, route, "id"), nil, 204)
	took = waitFor(t, limit, "route deletion on node B", func() bool {
		status, _, _ := b.Get(ctx, "/example", nil)
		return status == 404
	})
	t.Logf("route deleted on A gone from B after %v", took)
}

// TestNegativeCacheInvalidatedAcrossNodes: B caches "no such API key", then
// the key is created on A; B must accept it once the event arrives, with
// every cache backend (the shared redis level included).
func TestNegativeCacheInvalidatedAcrossNodes(t *testing.T) {
	forEachBackend(t, testNegativeCacheInvalidated)
}

func testNegativeCacheInvalidated(t *testing.T, backend string, env []string) {
	up := upstream(t)
	c := startCluster(t, 2, append(env, "SLUICE_DB_UPDATE_FREQUENCY=0.5")...)
	a, b := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()

	admin(t, a, "POST", "/services", form("name", "s", "url", up.URL), 201)
	admin(t, a, "POST", "/services/s/routes", form("paths[]", "/api"), 201)
	admin(t, a, "POST", "/services/s/plugins", form("name", "key-auth"), 201)
	admin(t, a, "POST", "/consumers", form("username", "alice"), 201)
	key := http.Header{"Apikey": {"alice-secret"}}
	waitFor(t, 3*time.Second, "key-auth on node B", func() bool {
		status, _, _ := b.Get(ctx, "/api", key)
		return status == 401
	})
	for range 3 { // cached negatively now
		if status, _, _ := b.Get(ctx, "/api", key); status != 401 {
			t.Fatalf("unknown key answered %d, want 401", status)
		}
	}
	admin(t, a, "POST", "/consumers/alice/key-auth", form("key", "alice-secret"), 201)
	took := waitFor(t, 3*time.Second, "new credential on node B", func() bool {
		status, _, _ := b.Get(ctx, "/api", key)
		return status == 200
	})
	t.Logf("credential created on A accepted by B after %v", took)

	if backend == "none" {
		return // nothing is cached, so there is no negative hit to see
	}
	metrics := string(admin(t, b, "GET", "/metrics", nil, 200))
	series := `sluice_cache_negative_hits_total{backend="` + backend + `",entity="keyauth_credentials"}`
	if !strings.Contains(metrics, series) || strings.Contains(metrics, series+" 0\n") {
		t.Errorf("node B's metrics show no negative hits for credentials:\n%s", grep(metrics, "negative_hits"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
