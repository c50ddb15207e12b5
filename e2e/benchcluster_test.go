package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/cluster"
	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// writeClusterFile writes a cluster file for c's nodes (admin URLs
// replaced by admins when given) and returns its path.
func writeClusterFile(t *testing.T, c *harness.Cluster, admins ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "load_balancer: %s\nnodes:\n", c.Nodes[0].ProxyURL)
	for i, n := range c.Nodes {
		a := n.AdminURL
		if i < len(admins) {
			a = admins[i]
		}
		fmt.Fprintf(&b, "  - name: %s\n    admin: %s\n    proxy: %s\n    metrics: %s/metrics\n", n.Name, a, n.ProxyURL, n.StatusURL)
	}
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// benchRun is `sluice bench --cluster` running as a process of its own.
type benchRun struct {
	cmd *exec.Cmd
	// out is the whole output; read it only after wait returned.
	out *bytes.Buffer
	// lines receives every output line until the process ends, when it
	// is closed.
	lines chan string
	done  chan error
}

// startBench starts `sluice bench args...`.
func startBench(t *testing.T, args ...string) *benchRun {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), append([]string{"bench"}, args...)...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &benchRun{cmd: cmd, out: &bytes.Buffer{}, lines: make(chan string, 1000), done: make(chan error, 1)}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			b.out.WriteString(sc.Text() + "\n")
			select {
			case b.lines <- sc.Text():
			default:
			}
		}
		close(b.lines)
	}()
	go func() { err := cmd.Wait(); pw.Close(); <-scanned; b.done <- err }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return b
}

// waitLine waits for an output line containing s.
func (b *benchRun) waitLine(t *testing.T, s string, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case l, ok := <-b.lines:
			if !ok {
				err := b.wait(t, time.Minute)
				t.Fatalf("bench ended (%v) before printing %q:\n%s", err, s, b.out)
			}
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			_ = b.cmd.Process.Kill()
			err := b.wait(t, time.Minute)
			t.Fatalf("bench did not print %q within %v (%v):\n%s", s, limit, err, b.out)
		}
	}
}

// wait waits for the process and returns its error.
func (b *benchRun) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	go func() {
		for range b.lines { // keep the pipe flowing
		}
	}()
	select {
	case err := <-b.done:
		return err
	case <-time.After(limit):
		_ = b.cmd.Process.Kill()
		err := <-b.done
		t.Fatalf("bench still running after %v (killed: %v):\n%s", limit, err, b.out)
		return nil
	}
}

// runBench runs `sluice bench args...` to the end, failing t unless it
// exits 0, and returns the report it wrote into out.
func runBench(t *testing.T, out string, args ...string) *report.Results {
	t.Helper()
	b := startBench(t, append(args, "--out", out)...)
	start := time.Now()
	if err := b.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("sluice bench %s: %v\n%s", strings.Join(args, " "), err, b.out)
	}
	t.Logf("sluice bench %s took %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return readResults(t, out, b.out.String())
}

func readResults(t *testing.T, out, log string) *report.Results {
	t.Helper()
	r, err := report.Read(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if r.Cluster == nil {
		t.Fatalf("results.json has no cluster object\n%s", log)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report.md:\n%s", md)
	return r
}

// canaryLeft lists, through n's Admin API, every entity carrying the
// canary tag.
func canaryLeft(t *testing.T, n *harness.Node) int {
	t.Helper()
	left := 0
	for _, kind := range []string{"services", "routes", "plugins", "consumers", "key-auths"} {
		body := admin(t, n, "GET", "/"+kind+"?size=1000&tags="+cluster.CanaryTag, nil, 200)
		var page struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		left += len(page.Data)
	}
	return left
}

// lagHistograms scrapes every node's sluice_invalidation_lag_seconds.
func lagHistograms(t *testing.T, c *harness.Cluster) [][]scrape.Bucket {
	t.Helper()
	out := make([][]scrape.Bucket, len(c.Nodes))
	for i, n := range c.Nodes {
		s, err := scrape.Get(context.Background(), n.StatusURL+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s.Histogram("sluice_invalidation_lag_seconds")
	}
	return out
}

// p50Buckets returns the bounds (ms) of the bucket holding the median,
// widened by one bucket on each side: the histogram's resolution.
func p50Buckets(b []scrape.Bucket) (lo, hi float64, ok bool) {
	if len(b) == 0 || b[len(b)-1].Count == 0 {
		return 0, 0, false
	}
	rank := b[len(b)-1].Count / 2
	for i, bk := range b {
		if bk.Count >= rank {
			if i >= 2 {
				lo = b[i-2].LE
			}
			hi = b[min(i+1, len(b)-1)].LE
			return lo * 1000, hi * 1000, true
		}
	}
	return 0, 0, false
}

// TestBenchCluster runs `sluice bench --cluster`, the built binary as an
// outside tool, against a 3-node cluster on PostgreSQL it starts itself,
// with push off, then on. Each node's probed median window must lie in
// the bucket of the node's own lag histogram holding its median (widened
// by the probe interval and the write's return trip), no node may stand
// out and no canary entity may be left. With push off, a second run cuts
// node-3's datastore link through the fault proxy once the probing
// starts: node-3, and only node-3, must stand out.
func TestBenchCluster(t *testing.T) {
	pg := testPostgres(t)
	const rounds, interval = 20, 5 * time.Millisecond
	for _, push := range []string{"off", "on"} {
		t.Run("push="+push, func(t *testing.T) {
			schema := pg.newSchema(t)
			fp := startFaultProxy(t, net.JoinHostPort(pg.host, strconv.Itoa(pg.port)))
			host, port := fp.Addr()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := harness.Start(ctx, harness.Options{Binary: sluiceBinary(t), Nodes: 3, Dir: t.TempDir(),
				Env:     append(pg.env("", schema), "SLUICE_DB_UPDATE_FREQUENCY=0.5", "SLUICE_DB_UPDATE_PUSH="+push, "SLUICE_PG_TIMEOUT=1"),
				NodeEnv: [][]string{nil, nil, {"SLUICE_PG_HOST=" + host, "SLUICE_PG_PORT=" + port}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			file := writeClusterFile(t, c)
			args := []string{"--cluster", file, "--rounds", strconv.Itoa(rounds), "--probe-interval", interval.String()}

			// The nodes' own histograms from the start of the probing (the
			// bench's progress line) to its end.
			out := t.TempDir()
			b := startBench(t, append(args, "--out", out)...)
			b.waitLine(t, "probing:", time.Minute)
			before := lagHistograms(t, c)
			b.waitLine(t, "windows over the reading nodes", 2*time.Minute) // before the cleanup's burst of deletes
			after := lagHistograms(t, c)
			if err := b.wait(t, 2*time.Minute); err != nil {
				t.Fatalf("bench: %v\n%s", err, b.out)
			}
			cl := readResults(t, out, b.out.String()).Cluster
			if cl.NotProbed != "" || cl.Writer != "node-1" {
				t.Fatalf("not probed (%q) or writer %q, want node-1", cl.NotProbed, cl.Writer)
			}
			if want := rounds * 4 * 2; cl.All.Samples != want || cl.All.Missed != 0 {
				t.Errorf("windows over the readers: %d samples, %d missed; want %d and 0", cl.All.Samples, cl.All.Missed, want)
			}
			for i, n := range cl.Nodes {
				if n.Lagging {
					t.Errorf("%s stands out (%s) on a healthy cluster", n.Name, n.LagNote)
				}
				if n.Writer {
					continue
				}
				lo, hi, ok := p50Buckets(scrape.Sub(after[i], before[i]))
				if !ok {
					t.Fatalf("%s applied no invalidation event during the run", n.Name)
				}
				// The window starts when the writer answered, the lag at the
				// commit, and the probe that sees a change is sent up to one
				// interval after it applied.
				slack := float64(interval+20*time.Millisecond) / 1e6
				t.Logf("%s: probed p50 %.1f ms (%d samples); its own lag p50 within (%g, %g] ms, one bucket either side, +- %g ms; report: %+v",
					n.Name, n.Window.P50, n.Window.Samples, lo, hi, slack, n.Inside)
				if n.Window.P50 <= lo-slack || n.Window.P50 > hi+slack {
					t.Errorf("%s: probed p50 %.1f ms outside (%g, %g] ms +- %g ms, its lag histogram's p50 bucket and its neighbours", n.Name, n.Window.P50, lo, hi, slack)
				}
				if n.Inside == nil || n.Inside.Agrees == nil || !*n.Inside.Agrees {
					t.Errorf("%s: the report does not say the windows agree with the node's histogram: %+v", n.Name, n.Inside)
				}
			}
			if len(cl.Budgets) != 3 {
				t.Errorf("%d budgets recommended, want 3", len(cl.Budgets))
			}
			if left := canaryLeft(t, c.Nodes[0]); left != 0 || cl.Cleanup.Left != 0 {
				t.Errorf("%d canary entities left (report: %d)", left, cl.Cleanup.Left)
			}
			if push == "on" {
				return
			}

			// Cut node-3's datastore link once the probing starts.
			out = t.TempDir()
			b = startBench(t, append(args, "--rounds", "4", "--probe-timeout", "2s", "--out", out)...)
			b.waitLine(t, "probing:", time.Minute)
			fp.Refuse(true)
			fp.CutAll()
			defer fp.Refuse(false)
			if err := b.wait(t, 2*time.Minute); err != nil {
				t.Fatalf("bench: %v\n%s", err, b.out)
			}
			cut := readResults(t, out, b.out.String()).Cluster
			for _, n := range cut.Nodes {
				if n.Lagging != (n.Name == "node-3") {
					t.Errorf("%s: lagging=%v (%s, %d samples, %d missed); want only node-3 to stand out", n.Name, n.Lagging, n.LagNote, n.Window.Samples, n.Window.Missed)
				}
			}
			if note := cut.Nodes[2].InsideNote; !strings.Contains(note, "polls/s failed") {
				t.Errorf("node-3's own metrics: %q, want its failed polls named", note)
			}
			if left := canaryLeft(t, c.Nodes[0]); left != 0 {
				t.Errorf("%d canary entities left after the run with node-3 cut", left)
			}
		})
	}
}

// TestBenchClusterKilled kills `sluice bench --cluster` (SIGKILL) while it
// probes, twice: the next run deletes the canary entities the first left,
// and `--cleanup` those of the second. Then Ctrl-C (SIGINT) in the middle
// of a run: the bench deletes its own before it exits. The Admin API must
// list no canary entity after each.
func TestBenchClusterKilled(t *testing.T) {
	c := startCluster(t, 2, "SLUICE_DB_UPDATE_FREQUENCY=0.5")
	file := writeClusterFile(t, c)
	kill := func() {
		b := startBench(t, "--cluster", file, "--rounds", "40", "--out", t.TempDir())
		b.waitLine(t, "probing:", time.Minute)
		if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = b.wait(t, 10*time.Second)
		if left := canaryLeft(t, c.Nodes[1]); left == 0 {
			t.Fatal("the killed bench left no canary entity: the kill came too late to test anything")
		} else {
			t.Logf("the killed bench left %d canary entities", left)
		}
	}
	kill()
	// The next run, which stays up serving its figures (--serve).
	out := t.TempDir()
	b := startBench(t, "--cluster", file, "--rounds", "2", "--out", out, "--serve", "127.0.0.1:0")
	addr := ""
	for l := range b.lines {
		if rest, ok := strings.CutPrefix(l, "serving the last run's figures on "); ok {
			addr = rest
		}
		if strings.HasPrefix(l, "report: ") {
			break
		}
	}
	if addr == "" {
		_ = b.cmd.Process.Kill()
		err := b.wait(t, time.Minute)
		t.Fatalf("no --serve address (%v):\n%s", err, b.out)
	}
	s, err := scrape.Get(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sum(`sluice_bench_cluster_samples{node="node-2"}`) != 8 {
		t.Errorf("--serve: sluice_bench_cluster_samples{node=\"node-2\"} = %v, want 8 (2 rounds of 4 changes)", s.Sum(`sluice_bench_cluster_samples{node="node-2"}`))
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	if err := b.wait(t, time.Minute); err != nil {
		t.Errorf("--serve: exit after Ctrl-C: %v", err)
	}
	r := readResults(t, out, b.out.String())
	if r.Cluster.Cleanup.Stale == 0 || r.Cluster.Cleanup.Left != 0 {
		t.Errorf("the next run deleted %d stale canary entities and left %d; want > 0 and 0", r.Cluster.Cleanup.Stale, r.Cluster.Cleanup.Left)
	}
	if left := canaryLeft(t, c.Nodes[1]); left != 0 {
		t.Errorf("%d canary entities left after the next run", left)
	}

	kill()
	cl, err := exec.Command(sluiceBinary(t), "bench", "--cluster", file, "--cleanup").CombinedOutput()
	t.Logf("--cleanup: %s", cl)
	if err != nil {
		t.Fatalf("--cleanup: %v", err)
	}
	if left := canaryLeft(t, c.Nodes[1]); left != 0 {
		t.Errorf("%d canary entities left after --cleanup", left)
	}

	b = startBench(t, "--cluster", file, "--rounds", "40", "--out", t.TempDir())
	b.waitLine(t, "probing:", time.Minute)
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = b.wait(t, time.Minute)
	t.Logf("after Ctrl-C the bench exited with %v", err)
	if !strings.Contains(b.out.String(), "canary cleanup through node-1") {
		t.Errorf("no cleanup line after Ctrl-C:\n%s", b.out)
	}
	if left := canaryLeft(t, c.Nodes[1]); left != 0 {
		t.Errorf("%d canary entities left after Ctrl-C", left)
	}
}

// adminFront serves a real node's Admin API through a reverse proxy
// that behaves as Kong does for a read-only token (403 to any write) or,
// with dbless, as a DB-less Kong node (GET / says database=off, writes
// answer 405). It returns the front's URL.
func adminFront(t *testing.T, n *harness.Node, dbless bool) string {
	t.Helper()
	target, err := url.Parse(n.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	if dbless {
		rp.ModifyResponse = func(resp *http.Response) error {
			if resp.Request.URL.Path != "/" {
				return nil
			}
			var info map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
				return err
			}
			resp.Body.Close()
			info["configuration"].(map[string]any)["database"] = "off"
			b, _ := json.Marshal(info)
			resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			resp.Header.Del("Content-Length")
			return nil
		}
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			rp.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if dbless {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"message":"cannot create or update entities when not using a database"}`))
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"message":"read-only token: writes are not allowed"}`))
	}), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestBenchClusterReadOnly points the bench at a node whose Admin API
// refuses writes, as a read-only token would (a real reverse proxy in
// front of a real node answers 403 to anything but GET and HEAD). The
// bench must say that consistency cannot be probed and why, and still
// report the node's settings, its own metrics and the load.
func TestBenchClusterReadOnly(t *testing.T) {
	c := startCluster(t, 1, "SLUICE_DB_UPDATE_FREQUENCY=0.5")
	n := c.Nodes[0]
	file := writeClusterFile(t, c, adminFront(t, n, false))

	r := runBench(t, t.TempDir(), "--cluster", file, "--load", "50", "--duration", "1s", "--path", "/nothing-here")
	cl := r.Cluster
	if !strings.Contains(cl.NotProbed, "refused") || !strings.Contains(cl.NotProbed, "403") {
		t.Errorf("not_probed = %q, want it to say the Admin API refused the write with 403", cl.NotProbed)
	}
	node := cl.Nodes[0]
	if node.Product != "sluice" || node.Database != "sqlite" || node.DBUpdateFrequencyS != 0.5 {
		t.Errorf("discovery: %+v, want sluice on sqlite at 0.5 s", node)
	}
	if cl.Load == nil || cl.Load.Requests != 50 || cl.Load.ByStatus["404"] != 50 {
		t.Errorf("load: %+v, want 50 requests answered 404", cl.Load)
	}
	if node.Inside == nil {
		t.Errorf("the node's own metrics are missing: %s", node.InsideNote)
	}
	if left := canaryLeft(t, n); left != 0 {
		t.Errorf("%d canary entities on a node that refused writes", left)
	}
}

// TestBenchClusterDBless puts node-3's Admin API behind a front that
// answers as a DB-less Kong node (database=off, writes 405). The bench
// must leave node-3 out of the probes, say why, and probe the others.
func TestBenchClusterDBless(t *testing.T) {
	c := startCluster(t, 3, "SLUICE_DB_UPDATE_FREQUENCY=0.5")
	file := writeClusterFile(t, c, c.Nodes[0].AdminURL, c.Nodes[1].AdminURL, adminFront(t, c.Nodes[2], true))
	const rounds = 3
	cl := runBench(t, t.TempDir(), "--cluster", file, "--rounds", strconv.Itoa(rounds)).Cluster
	dbless := cl.Nodes[2]
	if dbless.Database != "off" || !strings.HasPrefix(dbless.Probe, "no: DB-less") || dbless.Window.Samples+dbless.Window.Missed != 0 {
		t.Errorf("node-3: database %q, probe %q, %d samples; want it left out as DB-less", dbless.Database, dbless.Probe, dbless.Window.Samples)
	}
	if cl.Writer != "node-1" || cl.Nodes[1].Window.Samples != rounds*4 || cl.All.Samples != rounds*4 {
		t.Errorf("writer %q, node-2 %d samples, all %d; want node-1 writing and %d windows on node-2", cl.Writer, cl.Nodes[1].Window.Samples, cl.All.Samples, rounds*4)
	}
}
