package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

// TestGracefulShutdown sends SIGTERM to a node while a slow upstream
// request (1.5 s) is in flight. It proves that /status/ready answers 200
// {"message":"ready"} before and 503 {"message":"draining"} (Kong 3.x)
// while the node drains, that the proxy stops accepting new connections,
// that the request in flight still completes with 200, and that the
// process exits once it has, well within main's 30 s deadline.
func TestGracefulShutdown(t *testing.T) {
	arrived := make(chan struct{}, 1)
	slow := serveUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(1500 * time.Millisecond)
		_, _ = w.Write([]byte("slow done"))
	})
	c := startCluster(t, 1)
	n := c.Nodes[0]
	admin(t, n, "POST", "/services", form("name", "slow", "url", slow), 201)
	admin(t, n, "POST", "/services/slow/routes", form("paths[]", "/slow"), 201)
	if s, body := ready(t, n); s != 200 || body != `{"message":"ready"}` {
		t.Fatalf("GET /status/ready before SIGTERM = %d %s, want 200 {\"message\":\"ready\"}", s, body)
	}

	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		s, b, err := n.Get(context.Background(), "/slow", nil)
		inflight <- result{s, string(b), err}
	}()
	<-arrived
	pid := n.Pid()
	sent := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	took := waitFor(t, 2*time.Second, "503 draining on /status/ready", func() bool {
		s, body := ready(t, n)
		return s == 503 && body == `{"message":"draining"}`
	})
	t.Logf("/status/ready answered 503 draining %v after SIGTERM", took)
	proxyAddr := strings.TrimPrefix(n.ProxyURL, "http://")
	took = waitFor(t, 2*time.Second, "proxy refusing new connections", func() bool {
		conn, err := net.DialTimeout("tcp", proxyAddr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	t.Logf("the proxy refused new connections %v after SIGTERM", took)

	select {
	case r := <-inflight:
		t.Logf("the in-flight request finished %v after SIGTERM: %d %q %v", time.Since(sent), r.status, r.body, r.err)
		if r.err != nil || r.status != 200 || r.body != "slow done" {
			t.Errorf("in-flight request = %d %q, %v; want 200 \"slow done\"", r.status, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request did not finish within 10s of SIGTERM")
	}
	waitFor(t, 10*time.Second, "process exit", func() bool { return n.Pid() == 0 })
	t.Logf("the process exited %v after SIGTERM", time.Since(sent))
}

// TestShutdownDrainDelay starts a node with shutdown_drain_delay=1 and
// sends SIGTERM. It proves that during the delay /status/ready answers 503
// draining while the proxy still serves new requests (so a load balancer
// polling readiness takes the node out before it stops accepting), and that
// the node stops accepting after the delay.
func TestShutdownDrainDelay(t *testing.T) {
	up := upstream(t)
	c := startCluster(t, 1, "SLUICE_SHUTDOWN_DRAIN_DELAY=1")
	n := c.Nodes[0]
	admin(t, n, "POST", "/services", form("name", "s", "url", up.URL), 201)
	admin(t, n, "POST", "/services/s/routes", form("paths[]", "/s"), 201)
	sent := time.Now()
	if err := syscall.Kill(n.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 500*time.Millisecond, "503 draining on /status/ready", func() bool {
		s, body := ready(t, n)
		return s == 503 && body == `{"message":"draining"}`
	})
	// Still inside the delay: a new client connection is served.
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	resp, err := cl.Get(n.ProxyURL + "/s")
	if elapsed := time.Since(sent); elapsed < 900*time.Millisecond {
		if err != nil {
			t.Fatalf("a new request %v into the drain delay failed: %v", elapsed, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a new request %v into the drain delay answered %d, want 200", elapsed, resp.StatusCode)
		}
	} else if err == nil {
		resp.Body.Close()
	}
	proxyAddr := strings.TrimPrefix(n.ProxyURL, "http://")
	took := waitFor(t, 5*time.Second, "proxy refusing new connections", func() bool {
		conn, err := net.DialTimeout("tcp", proxyAddr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if total := time.Since(sent); total < time.Second {
		t.Errorf("the proxy stopped accepting %v after SIGTERM, before the 1 s drain delay", total)
	}
	t.Logf("the proxy refused new connections %v after the readiness probe turned 503", took)
}

// ready returns the status and trimmed body of GET /status/ready; 0 when
// the listener does not answer.
func ready(t *testing.T, n *harness.Node) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: time.Second}
	resp, err := cl.Get(n.StatusURL + "/status/ready")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestNotReadyWithoutDatastore starts a node whose PostgreSQL is
// unreachable (the fault proxy resets every connection; pg_timeout=1). It
// proves the node never reports ready: it gives up with an error naming
// the datastore and exits, rather than serving without its datastore.
func TestNotReadyWithoutDatastore(t *testing.T) {
	pg := testPostgres(t)
	schema := pg.newSchema(t)
	fp := startFaultProxy(t, net.JoinHostPort(pg.host, strconv.Itoa(pg.port)))
	fp.Refuse(true)
	host, port := fp.Addr()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	c, err := harness.Start(ctx, harness.Options{Binary: sluiceBinary(t), Nodes: 1, Dir: dir, ReadyTimeout: 15 * time.Second,
		Env: append(pg.env(net.JoinHostPort(host, port), schema), "SLUICE_PG_TIMEOUT=1")})
	if err == nil {
		c.Stop()
		t.Fatal("a node whose datastore refuses every connection reported ready")
	}
	log, _ := os.ReadFile(filepath.Join(dir, "node-1.log"))
	t.Logf("after %v (%d connection attempts at the datastore): %v\nlog: %s", time.Since(start), fp.Accepted(), err,
		strings.TrimSpace(string(log)))
	if !strings.Contains(err.Error(), "exited before it was ready") {
		t.Errorf("want the node to exit, got %v", err)
	}
	if !strings.Contains(string(log), "postgres") {
		t.Errorf("the node's log does not name the datastore:\n%s", log)
	}
}
