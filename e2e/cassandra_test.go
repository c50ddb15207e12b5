package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/gateway/store/cassandra"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// The settings of the Cassandra cluster tests: a change on one node must
// reach the other within freq + prop (plus the poll's own cost), and never
// before prop (receivers delay every event by db_update_propagation).
const (
	cassFreq = time.Second
	cassProp = 500 * time.Millisecond
	// cassSlack is what a measured window may exceed freq + prop by before
	// the test fails. The expected cost is about 100 ms; 1 s keeps a loaded
	// 2-core CI box running -race from flaking. The measured windows are
	// logged, and the ones above freq + prop + 100 ms are counted.
	cassSlack = time.Second
	// cassClockSlack absorbs Cassandra's millisecond clock (toUnixTimestamp
	// truncates) in the "not before prop" check; same host, same clock.
	cassClockSlack = 5 * time.Millisecond
)

// cassandraEnv returns the SLUICE_* settings of a fresh keyspace on the
// server named by SLUICE_TEST_CASSANDRA and drops the keyspace when t ends.
// It skips t when the variable is unset, and fails it when CI=true.
func cassandraEnv(t *testing.T) []string {
	t.Helper()
	host, p := testenv.HostPort(t, "SLUICE_TEST_CASSANDRA",
		`start a node with bash tools/cassandra/cassandra.sh start && eval "$(bash tools/cassandra/cassandra.sh env)"`)
	ks := "sluice_e2e_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := cassandra.Open(ctx, cassandra.Config{ContactPoints: []string{host}, Port: p, Keyspace: ks, Timeout: 30 * time.Second})
		if err != nil {
			t.Errorf("cannot drop keyspace %s: %v", ks, err)
			return
		}
		defer s.Close()
		if err := s.Reset(ctx); err != nil {
			t.Errorf("cannot drop keyspace %s: %v", ks, err)
		}
	})
	return []string{
		"SLUICE_DATABASE=cassandra",
		"SLUICE_CASSANDRA_CONTACT_POINTS=" + host,
		"SLUICE_CASSANDRA_PORT=" + strconv.Itoa(p),
		"SLUICE_CASSANDRA_KEYSPACE=" + ks,
		"SLUICE_CASSANDRA_TIMEOUT=30", // DDL on a loaded 2-core box
	}
}

// window is one change written on A and observed on B.
type window struct {
	what string
	// sent is when the write was sent to A, acked when A answered it.
	sent, acked time.Time
	// seen is when the first response of B showing the change arrived.
	seen time.Time
}

// fromSent is the window as a client sees it: from sending the write to A
// until B answers with the change. It includes the write's own latency, so
// it bounds the true window (commit to applied) from above.
func (w window) fromSent() time.Duration { return w.seen.Sub(w.sent) }

// fromAck is the window from A's answer to B's.
func (w window) fromAck() time.Duration { return w.seen.Sub(w.acked) }

// change waits phase, sends a write to a (failing t unless it answers
// want) and waits until B's proxy answers path with status, polling every
// 2 ms. It checks the two bounds of the consistency window.
//
// B applies events right after one of its polls, so a write sent as soon
// as B showed the previous change lands just after a poll and always waits
// a whole db_update_frequency. phase, the time since B showed the previous
// change, moves the write across B's poll cycle: writes landing just before
// a poll are the ones that only db_update_propagation holds back.
func change(t *testing.T, a, b *harness.Node, phase time.Duration, what, method, apiPath string, body map[string]string,
	want int, path string, status int) (window, []byte) {
	t.Helper()
	ctx := context.Background()
	time.Sleep(phase)
	var f url.Values
	if len(body) > 0 {
		f = form()
		for k, v := range body {
			f.Set(k, v)
		}
	}
	w := window{what: what, sent: time.Now()}
	resp := admin(t, a, method, apiPath, f, want)
	w.acked = time.Now()
	limit := cassFreq + cassProp + cassSlack
	for {
		got, _, err := b.Get(ctx, path, nil)
		now := time.Now()
		if err == nil && got == status {
			w.seen = now
			break
		}
		if now.Sub(w.acked) > limit {
			t.Fatalf("%s: node B still answers GET %s with %d (%v) %v after node A acknowledged the write; want %d within "+
				"db_update_frequency + db_update_propagation + %v = %v", what, path, got, err, now.Sub(w.acked), status, cassSlack, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The event's At is read on Cassandra after w.sent, and B may not apply
	// it before At + db_update_propagation: B's answer cannot come earlier.
	if w.fromSent() < cassProp-cassClockSlack {
		t.Errorf("%s: node B answered with the change %v after the write was sent, before db_update_propagation = %v: "+
			"the receiver did not delay the purge", what, w.fromSent(), cassProp)
	}
	return w, resp
}

func logWindow(t *testing.T, w window) {
	t.Helper()
	t.Logf("%-42s window %4dms from sending the write on A (%4dms from its answer; write took %3dms)",
		w.what, w.fromSent().Milliseconds(), w.fromAck().Milliseconds(), w.acked.Sub(w.sent).Milliseconds())
}

// TestCassandra runs two real node processes on one fresh Cassandra
// keyspace (schema changes are slow, so every subtest shares it) with
// db_update_frequency=1 and db_update_propagation=0.5.
func TestCassandra(t *testing.T) {
	env := cassandraEnv(t)
	up := upstream(t)
	start := time.Now()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := harness.Start(ctx, harness.Options{Binary: sluiceBinary(t), Nodes: 2, Dir: dir, Env: append(slices.Clone(env),
		"SLUICE_DB_UPDATE_FREQUENCY="+strconv.FormatFloat(cassFreq.Seconds(), 'f', -1, 64),
		"SLUICE_DB_UPDATE_PROPAGATION="+strconv.FormatFloat(cassProp.Seconds(), 'f', -1, 64))})
	if err != nil {
		t.Fatalf("%v\n%s", err, nodeLogs(dir))
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("node logs:\n%s", nodeLogs(dir))
		}
	})
	t.Logf("two nodes on a fresh keyspace ready after %v (migrations included)", time.Since(start).Round(time.Millisecond))
	a, b := c.Nodes[0], c.Nodes[1]
	if log, err := os.ReadFile(filepath.Join(dir, "node-1.log")); err != nil || strings.Contains(string(log), cassWarningText) {
		t.Errorf("node-1 (db_update_propagation=%v) log: %v; want no propagation warning:\n%s", cassProp, err, log)
	}

	t.Run("SeedScenario", func(t *testing.T) { cassSeedScenario(t, a, b, up.URL) })
	t.Run("ConsistencyWindow", func(t *testing.T) { cassWindow(t, a, b, up.URL) })
	t.Run("UniqueNamesAcrossNodes", func(t *testing.T) { cassUnique(t, a, b, up.URL) })
	t.Run("StartupWarningWithoutPropagation", func(t *testing.T) { cassWarning(t, env) })
}

// cassSeedScenario: service + route on A answered by B; a plugin added on
// A reaches B; a delete on A reaches B.
func cassSeedScenario(t *testing.T, a, b *harness.Node, upURL string) {
	ctx := context.Background()
	admin(t, a, "POST", "/services", form("name", "example-service", "url", upURL), 201)
	// B caches "no route" first, so that only the event can change it.
	if status, _, _ := b.Get(ctx, "/example", nil); status != 404 {
		t.Fatalf("node B answered %d before the route exists, want 404", status)
	}
	w, route := change(t, a, b, 0, "route created on A, answered by B", "POST", "/services/example-service/routes",
		map[string]string{"paths[]": "/example", "name": "example-route"}, 201, "/example", 200)
	logWindow(t, w)
	if status, body, _ := b.Get(ctx, "/example/x", nil); status != 200 || string(body) != "upstream saw /x" {
		t.Fatalf("node B proxied /example/x to %d %q, want the upstream's answer", status, body)
	}

	w, _ = change(t, a, b, 700*time.Millisecond, "plugin added on A, applied by B", "POST", "/services/example-service/plugins",
		map[string]string{"name": "request-termination", "config.status_code": "418", "config.message": "teapot"},
		201, "/example", 418)
	logWindow(t, w)
	if status, _, _ := a.Get(ctx, "/example", nil); status != 418 {
		t.Fatalf("node A answered %d after its own write, want 418", status)
	}

	w, _ = change(t, a, b, 300*time.Millisecond, "route deleted on A, gone from B", "DELETE", "/routes/"+jsonField(t, route, "id"),
		nil, 204, "/example", 404)
	logWindow(t, w)
	if status, _, _ := a.Get(ctx, "/example", nil); status != 404 {
		t.Fatalf("node A answered %d after its own delete, want 404", status)
	}
}

// cassWindow measures the window over SLUICE_TEST_CASSANDRA_CHANGES changes
// (default 20), alternately creating and deleting a route, with their
// phases spread evenly over B's poll cycle.
func cassWindow(t *testing.T, a, b *harness.Node, upURL string) {
	n := 20
	if v := os.Getenv("SLUICE_TEST_CASSANDRA_CHANGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("SLUICE_TEST_CASSANDRA_CHANGES=%q: want an integer >= 2", v)
		}
	}
	admin(t, a, "POST", "/services", form("name", "window-service", "url", upURL), 201)
	var ws []window
	var routeID string
	for i := range n {
		var w window
		phase := time.Duration(i) * cassFreq / time.Duration(n)
		if i%2 == 0 {
			var body []byte
			w, body = change(t, a, b, phase, fmt.Sprintf("change %2d (phase %3dms): route created", i+1, phase.Milliseconds()), "POST", "/services/window-service/routes",
				map[string]string{"paths[]": "/window"}, 201, "/window", 200)
			routeID = jsonField(t, body, "id")
		} else {
			w, _ = change(t, a, b, phase, fmt.Sprintf("change %2d (phase %3dms): route deleted", i+1, phase.Milliseconds()), "DELETE", "/routes/"+routeID,
				nil, 204, "/window", 404)
		}
		logWindow(t, w)
		ws = append(ws, w)
	}
	sent := make([]time.Duration, len(ws))
	acked := make([]time.Duration, len(ws))
	over := 0
	for i, w := range ws {
		sent[i], acked[i] = w.fromSent(), w.fromAck()
		if w.fromSent() > cassFreq+cassProp+100*time.Millisecond {
			over++
		}
	}
	t.Logf("window over %d changes (db_update_frequency=%v, db_update_propagation=%v), from sending the write on A: %s; "+
		"from A's answer: %s; %d/%d above frequency + propagation + 100ms",
		n, cassFreq, cassProp, percentiles(sent), percentiles(acked), over, n)
}

// percentiles formats min/p50/p99/max with the nearest-rank method.
func percentiles(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	return fmt.Sprintf("min %dms p50 %dms p99 %dms max %dms", ms(s[0]), ms(rank(0.50)), ms(rank(0.99)), ms(s[len(s)-1]))
}

// cassUnique posts the same service name on A and B at the same time:
// Cassandra's lightweight transactions must let exactly one win each round.
func cassUnique(t *testing.T, a, b *harness.Node, upURL string) {
	const rounds = 25
	ctx := context.Background()
	var lat []time.Duration
	for r := range rounds {
		name := fmt.Sprintf("race-%d", r)
		type result struct {
			node   *harness.Node
			status int
			body   []byte
			err    error
			took   time.Duration
		}
		results := make([]result, 2)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i, n := range []*harness.Node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				start := time.Now()
				status, body, err := n.Admin(ctx, "POST", "/services", form("name", name, "url", upURL))
				results[i] = result{n, status, body, err, time.Since(start)}
			}()
		}
		close(gate)
		wg.Wait()
		var created, conflict *result
		for i := range results {
			res := &results[i]
			lat = append(lat, res.took)
			switch {
			case res.err != nil:
				t.Fatalf("round %d: POST /services on %s: %v", r, res.node.Name, res.err)
			case res.status == 201:
				created = res
			case res.status == 409:
				conflict = res
				if !strings.Contains(string(res.body), "unique constraint violation") {
					t.Errorf("round %d: 409 from %s without Kong's unique violation body: %s", r, res.node.Name, res.body)
				}
			}
		}
		if created == nil || conflict == nil {
			t.Fatalf("round %d: %s answered %d %s and %s answered %d %s; want exactly one 201 and one 409",
				r, a.Name, results[0].status, results[0].body, b.Name, results[1].status, results[1].body)
		}
		// Both nodes must now agree on the one service of that name.
		id := jsonField(t, created.body, "id")
		for _, n := range []*harness.Node{a, b} {
			got := jsonField(t, admin(t, n, "GET", "/services/"+name, nil, 200), "id")
			if got != id {
				t.Fatalf("round %d: %s says service %s has id %s, want the winner's %s", r, n.Name, name, got, id)
			}
		}
	}
	t.Logf("%d rounds of the same name posted on both nodes at once: exactly one 201 and one 409 each; "+
		"POST latency %s", rounds, percentiles(lat))
}

// cassWarningText starts the warning `sluice run` logs on Cassandra when
// db_update_propagation is 0.
const cassWarningText = "You are using Cassandra but db_update_propagation is 0"

// cassWarning starts a node with db_update_propagation=0 on Cassandra and
// reads the warning in its log.
func cassWarning(t *testing.T, env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := harness.Start(ctx, harness.Options{Binary: sluiceBinary(t), Nodes: 1, Dir: dir,
		Env: append(slices.Clone(env), "SLUICE_DB_UPDATE_PROPAGATION=0")})
	if err != nil {
		t.Fatalf("%v\n%s", err, nodeLogs(dir))
	}
	c.Stop()
	logPath := filepath.Join(dir, "node-1.log")
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	want := cassWarningText
	var line string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, want) {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, "level=WARN") {
		t.Fatalf("%s has no WARN line containing %q:\n%s", logPath, want, log)
	}
	t.Logf("start-up warning: %s", line)
}

// nodeLogs returns the last lines of every node log the harness wrote in
// dir (it is a TempDir: gone once the test ends).
func nodeLogs(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "node-*.log"))
	var out strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(&out, "--- %s: %v\n", f, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(&out, "--- %s (last %d lines)\n%s\n", filepath.Base(f), len(lines), strings.Join(lines, "\n"))
	}
	return out.String()
}
