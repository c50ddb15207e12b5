package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

// dblessConfig returns a declarative configuration of about 10,000
// entities: the upstream's service with route /hit (and /hit2 when second),
// then filler services with a route each, consumers with a key-auth
// credential each. second also renames every filler service, so that the
// swap replaces most of the configuration.
func dblessConfig(upURL string, second bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "_format_version: \"3.0\"\nservices:\n- name: up\n  url: %s\n  routes:\n  - {name: hit, paths: [/hit]}\n", upURL)
	if second {
		b.WriteString("  - {name: hit2, paths: [/hit2]}\n")
	}
	prefix := "svc"
	if second {
		prefix = "svc-v2"
	}
	const n = 2500
	for i := range n {
		fmt.Fprintf(&b, "- name: %s-%d\n  host: filler-%d.internal\n  routes:\n  - {name: %s-route-%d, paths: [/filler/%d]}\n",
			prefix, i, i, prefix, i, i)
	}
	b.WriteString("consumers:\n")
	for i := range n {
		fmt.Fprintf(&b, "- username: user-%d\n  keyauth_credentials:\n  - key: key-%d\n", i, i)
	}
	return b.Bytes()
}

// TestDBLessNodes: two DB-less nodes load a 10,000-entity file at start;
// under continuous proxy load, POST /config of a changed file to every
// node swaps it with no failed request, and the change is served.
func TestDBLessNodes(t *testing.T) {
	up := upstream(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "kong.yaml")
	if err := os.WriteFile(file, dblessConfig(up.URL, false), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := startCluster(t, 2, "SLUICE_DATABASE=off", "SLUICE_DECLARATIVE_CONFIG="+file)
	t.Logf("2 DB-less nodes loaded 10,001 entities and were ready in %v", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	for _, n := range c.Nodes {
		if status, body, err := n.Get(ctx, "/hit", nil); err != nil || status != 200 {
			t.Fatalf("%s: GET /hit = %d %s, %v", n.Name, status, body, err)
		}
		admin(t, n, "POST", "/services", form("name", "x", "host", "h"), 405)
	}
	heapBefore := heapMiB(t, c.Nodes[0])

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			n := c.Nodes[w%2]
			deadline := time.Now().Add(time.Minute) // bounded even if the test fails
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				status, _, err := n.Get(ctx, "/hit", nil)
				sent.Add(1)
				if err != nil || status != 200 {
					failed.Add(1)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	second := dblessConfig(up.URL, true)
	swapStart := time.Now()
	for _, n := range c.Nodes {
		t0 := time.Now()
		status, body := postConfig(t, n, second)
		if status != 201 {
			t.Fatalf("%s: POST /config = %d %s", n.Name, status, body)
		}
		took := time.Since(t0)
		served := waitFor(t, 10*time.Second, n.Name+" serves /hit2", func() bool {
			status, _, err := n.Get(ctx, "/hit2", nil)
			return err == nil && status == 200
		})
		t.Logf("%s: POST /config of %d KiB (10,002 entities, 5,000 replaced) took %v; /hit2 served %v after it answered",
			n.Name, len(second)>>10, took.Round(time.Millisecond), served.Round(time.Millisecond))
	}
	t.Logf("POST /config to every node, one after the other: the change was served by all %d nodes %v after the first POST",
		len(c.Nodes), time.Since(swapStart).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("proxy load during the swaps: %d requests, %d failed; node-1 heap %.1f MiB before, %.1f MiB after",
		sent.Load(), failed.Load(), heapBefore, heapMiB(t, c.Nodes[0]))
	if failed.Load() != 0 || sent.Load() < 100 {
		t.Errorf("%d of %d requests failed during POST /config", failed.Load(), sent.Load())
	}
	for _, n := range c.Nodes {
		if status, _, err := n.Get(ctx, "/hit2", nil); err != nil || status != 200 {
			t.Errorf("%s: the new route /hit2 answers %d, %v", n.Name, status, err)
		}
		admin(t, n, "GET", "/services/svc-0", nil, 404)
		admin(t, n, "GET", "/services/svc-v2-0", nil, 200)
	}
	status, body := postConfig(t, c.Nodes[0], []byte("_format_version: \"3.0\"\nservices:\n- {name: broken}\n"))
	if status != 400 || !strings.Contains(string(body), `"code":14`) {
		t.Errorf("invalid POST /config = %d %s", status, body)
	}
	admin(t, c.Nodes[0], "GET", "/services/svc-v2-0", nil, 200)
}

func postConfig(t *testing.T, n *harness.Node, cfg []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(n.AdminURL+"/config", "application/yaml", bytes.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// heapMiB reads the node's Go heap from GET /status?unit=b.
func heapMiB(t *testing.T, n *harness.Node) float64 {
	t.Helper()
	b := admin(t, n, "GET", "/status?unit=b", nil, 200)
	var st struct {
		Memory struct {
			Go struct {
				HeapAlloc float64 `json:"heap_alloc"`
			} `json:"go"`
		} `json:"memory"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Memory.Go.HeapAlloc / (1 << 20)
}
