package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

// TestPostgresOutage takes PostgreSQL away from two nodes under traffic and
// brings it back.
//
// The outage is simulated with faultProxy (faultproxy_test.go) between the
// nodes and the shared test server, not by stopping a PostgreSQL: the
// shared server must stay up for the other tests, a second cluster costs
// seconds of initdb and start-up per run, and cutting every connection and
// resetting new ones is what the nodes see when a server dies or a network
// partitions, at a moment the test chooses to the millisecond.
//
// During the outage: cached routes and consumers keep answering (stale
// entries served past db_cache_ttl=1, counted in
// sluice_cache_stale_hits_total), an uncached API key gets 503 with a JSON
// message, Admin API writes get 503, /status says database.reachable=false.
// After it: the nodes recover without restart, a route created on A just
// before the cut reaches B (its event was not lost), and a change made after
// recovery reaches B.
func TestPostgresOutage(t *testing.T) {
	for _, push := range []string{"off", "on"} {
		t.Run("push="+push, func(t *testing.T) { testOutage(t, push) })
	}
}

func testOutage(t *testing.T, push string) {
	const outage = 3 * time.Second // > db_cache_ttl, so that cached entries go stale
	pg := testPostgres(t)
	schema := pg.newSchema(t)
	fp := startFaultProxy(t, net.JoinHostPort(pg.host, strconv.Itoa(pg.port)))
	host, port := fp.Addr()
	up := upstream(t)
	c := startCluster(t, 2, append(pg.env(net.JoinHostPort(host, port), schema),
		"SLUICE_DB_UPDATE_FREQUENCY=1", "SLUICE_DB_UPDATE_PUSH="+push,
		"SLUICE_DB_CACHE_TTL=1", "SLUICE_DB_RESURRECT_TTL=30", "SLUICE_PG_TIMEOUT=2")...)
	a, b := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()

	admin(t, a, "POST", "/services", form("name", "s", "url", up.URL), 201)
	admin(t, a, "POST", "/services/s/routes", form("name", "api", "paths[]", "/api"), 201)
	admin(t, a, "POST", "/routes/api/plugins", form("name", "key-auth"), 201)
	admin(t, a, "POST", "/consumers", form("username", "alice"), 201)
	admin(t, a, "POST", "/consumers/alice/key-auth", form("key", "alice-key"), 201)
	alice := http.Header{"Apikey": {"alice-key"}}
	for _, n := range c.Nodes {
		// A 200 alone could come before key-auth reached n: wait for its 401.
		waitFor(t, 5*time.Second, "key-auth on "+n.Name, func() bool {
			s, _, _ := n.Get(ctx, "/api", nil)
			return s == 401
		})
		waitFor(t, 5*time.Second, "alice's key on "+n.Name, func() bool {
			s, _, _ := n.Get(ctx, "/api", alice)
			return s == 200
		})
	}

	// Traffic on both nodes for the whole test: every answer must be 200.
	tr := startTraffic(c.Nodes, "/api", alice)
	defer tr.stop()

	// A change committed just before the cut: B may or may not have polled
	// it yet; if it has not, it must apply it after recovery.
	admin(t, a, "POST", "/services/s/routes", form("paths[]", "/late"), 201)
	fp.Refuse(true)
	cut := fp.CutAll()
	cutAt := time.Now()
	// A read B had in flight when the connections were cut may still land
	// (its answer was in B's socket), and the incremental apply that
	// follows takes well under a millisecond: what B serves within this
	// grace it read before the cut. Nothing later may come from the
	// datastore until it is back.
	seenBefore := false
	for grace := time.Now().Add(100 * time.Millisecond); time.Now().Before(grace) && !seenBefore; time.Sleep(5 * time.Millisecond) {
		seenBefore = status(b, "/late") == 200
	}
	t.Logf("push=%s: PostgreSQL cut (%d proxied connections reset); B served the pre-cut route before the cut: %v", push, cut, seenBefore)
	staleBefore := metricSum(t, b, "sluice_cache_stale_hits_total", "")

	for _, n := range c.Nodes {
		took := waitFor(t, 5*time.Second, n.Name+" /status reachable=false", func() bool { return !reachable(t, n) })
		t.Logf("push=%s: %s reports database.reachable=false %v after the cut", push, n.Name, took)
	}
	start := time.Now()
	s, body, err := b.Get(ctx, "/api", http.Header{"Apikey": {"uncached-key"}})
	if err != nil || s != 503 || jsonField(t, body, "message") == "" {
		t.Errorf("uncached API key during the outage: %d %s, %v; want 503 with a JSON message", s, body, err)
	}
	t.Logf("push=%s: uncached key answered %d %s in %v", push, s, strings.TrimSpace(string(body)), time.Since(start))
	start = time.Now()
	body = admin(t, a, "POST", "/consumers", form("username", "bob"), 503)
	t.Logf("push=%s: Admin API write refused in %v: %s", push, time.Since(start), strings.TrimSpace(string(body)))
	if jsonField(t, body, "message") == "" {
		t.Errorf("Admin API 503 without a message: %s", body)
	}
	time.Sleep(time.Until(cutAt.Add(outage)))
	if status(b, "/late") == 200 && !seenBefore {
		t.Errorf("B learnt of the pre-cut route while PostgreSQL was unreachable")
	}
	for _, n := range c.Nodes {
		if s, body, err := n.Get(ctx, "/api", alice); err != nil || s != 200 {
			t.Errorf("%s: cached consumer after %v of outage: %d %s, %v; want 200", n.Name, outage, s, body, err)
		}
	}
	stale := metricSum(t, b, "sluice_cache_stale_hits_total", "") - staleBefore
	if stale <= 0 {
		t.Errorf("sluice_cache_stale_hits_total on B did not move during %v of outage with db_cache_ttl=1", outage)
	}
	t.Logf("push=%s: B served %v stale entities during the outage", push, stale)

	fp.Refuse(false)
	back := time.Now()
	for _, n := range c.Nodes {
		took := waitFor(t, 10*time.Second, n.Name+" /status reachable=true", func() bool { return reachable(t, n) })
		t.Logf("push=%s: %s reports database.reachable=true %v after PostgreSQL came back", push, n.Name, took)
	}
	waitFor(t, 10*time.Second, "pre-cut route on B after recovery", func() bool { return status(b, "/late") == 200 })
	t.Logf("push=%s: pre-cut route served by B %v after recovery", push, time.Since(back))
	took := waitFor(t, 10*time.Second, "Admin API write on A after recovery", func() bool {
		s, _, _ := a.Admin(ctx, "POST", "/services/s/routes", form("name", "after", "paths[]", "/after"))
		return s == 201
	})
	t.Logf("push=%s: Admin API accepts writes %v after recovery", push, took)
	wrote := time.Now()
	waitFor(t, 5*time.Second, "post-recovery route on B", func() bool { return status(b, "/after") == 200 })
	t.Logf("push=%s: route created on A after recovery served by B after %v", push, time.Since(wrote))
	if s, body, _ := b.Get(ctx, "/api", http.Header{"Apikey": {"uncached-key"}}); s != 401 {
		t.Errorf("unknown key after recovery: %d %s, want 401", s, body)
	}

	ok, nfailed, failed := tr.stop()
	t.Logf("push=%s: traffic on A and B: %d answers 200, %d failed %v", push, ok, nfailed, failed)
	if nfailed > 0 {
		t.Errorf("requests with a cached route and consumer failed across the outage: %v", failed)
	}
}

// traffic sends requests to nodes in a loop, counting 200s and keeping the
// first other answers.
type traffic struct {
	ok atomic.Int64
	// mu guards nfailed and failed (the first 10 failures).
	mu       sync.Mutex
	nfailed  int
	failed   []string
	done     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

func startTraffic(nodes []*harness.Node, path string, h http.Header) *traffic {
	tr := &traffic{done: make(chan struct{})}
	for _, n := range nodes {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				select {
				case <-tr.done:
					return
				case <-time.After(2 * time.Millisecond):
				}
				s, body, err := n.Get(context.Background(), path, h)
				if err == nil && s == 200 {
					tr.ok.Add(1)
					continue
				}
				tr.mu.Lock()
				tr.nfailed++
				if len(tr.failed) < 10 {
					tr.failed = append(tr.failed, n.Name+": "+strconv.Itoa(s)+" "+strings.TrimSpace(string(body))+errString(err))
				}
				tr.mu.Unlock()
			}
		}()
	}
	return tr
}

// stop stops the traffic and returns the number of 200s, of failures, and
// the first failures.
func (tr *traffic) stop() (ok int64, nfailed int, failed []string) {
	tr.stopOnce.Do(func() { close(tr.done) })
	tr.wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.ok.Load(), tr.nfailed, tr.failed
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " " + err.Error()
}

// reachable returns database.reachable from n's /status.
func reachable(t *testing.T, n *harness.Node) bool {
	t.Helper()
	resp, err := http.Get(n.StatusURL + "/status")
	if err != nil {
		t.Fatalf("%s /status: %v", n.Name, err)
	}
	defer resp.Body.Close()
	var st struct {
		Database struct{ Reachable bool }
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("%s /status: %v", n.Name, err)
	}
	return st.Database.Reachable
}

// metricSum sums the samples of the metric family name on n whose labels
// contain label.
func metricSum(t *testing.T, n *harness.Node, name, label string) float64 {
	t.Helper()
	var sum float64
	for _, l := range strings.Split(string(admin(t, n, "GET", "/metrics", nil, 200)), "\n") {
		if !strings.HasPrefix(l, name) || !strings.Contains(l, label) {
			continue
		}
		rest := strings.TrimPrefix(l, name)
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}
