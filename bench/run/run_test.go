package run

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/stats"
)

// runMini runs the bench with profile p and nodes nodes on real node
// processes of a freshly built binary (skipped with -short) and returns
// its results.json and report directory.
func runMini(t *testing.T, p Profile, nodes int, skip ...string) (*report.Results, string) {
	t.Helper()
	return runMiniOn(t, "sqlite", p, nodes, skip...)
}

// runMiniOn is runMini on database db.
func runMiniOn(t *testing.T, db string, p Profile, nodes int, skip ...string) (*report.Results, string) {
	t.Helper()
	return runMiniWith(t, Options{Profile: p, Database: db, Nodes: nodes, Skip: skip})
}

// runMiniWith is runMini with every option but the binary and the report
// directory given.
func runMiniWith(t *testing.T, opts Options) (*report.Results, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := harness.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	opts.Binary, opts.Out = bin, out
	if _, err := Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	r, err := report.Read(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	return r, out
}

// TestRunRejectsUnknownSkip checks that a misspelt --skip phase is an
// error naming the allowed ones, before anything starts.
func TestRunRejectsUnknownSkip(t *testing.T) {
	_, err := Run(context.Background(), Options{Binary: "/nonexistent/sluice", Profile: Profiles["smoke"], Out: t.TempDir(),
		Database: "sqlite", Nodes: 2, Skip: []string{"throughput", "strom"}})
	if err == nil || !strings.Contains(err.Error(), `"strom"`) || !strings.Contains(err.Error(), "throughput, consistency, storm") {
		t.Fatalf("Run with --skip strom: %v; want an error naming strom and the phases", err)
	}
}

// TestRunRejectsBadDatabase checks that --database names the allowed
// values, and that the soak, whose changes are entity writes, says why it
// does not run on DB-less nodes.
func TestRunRejectsBadDatabase(t *testing.T) {
	for _, tt := range []struct{ db, profile, want string }{
		{"mysql", "smoke", "want sqlite, postgres, cassandra or off"},
		{"off", "soak", "the soak changes entities through the Admin API"},
	} {
		_, err := Run(context.Background(), Options{Binary: "/nonexistent/sluice", Profile: Profiles[tt.profile], Out: t.TempDir(),
			Database: tt.db, Nodes: 2})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run with --database %s, profile %s: %v; want an error saying %q", tt.db, tt.profile, err, tt.want)
		}
	}
}

// TestMiniProfileDBless runs the bench on DB-less node processes: every
// node is loaded with POST /config, the throughput row is measured as on
// a datastore, and the consistency phase gives one row, "POST /config to
// every node", whose changes are configurations POSTed to each node in
// turn and probed on every node. Nothing about speed is asserted.
func TestMiniProfileDBless(t *testing.T) {
	p := Profile{Name: "mini-dbless", Consumers: 50, UnknownShare: 0.1, Conns: 4,
		Warmup: 100 * time.Millisecond, Closed: 300 * time.Millisecond, Open: 300 * time.Millisecond, OpenRate: 100,
		Backends: []string{"freecache"}, Frequencies: []float64{0.25},
		Changes: 8, SettingRPS: 100 * time.Millisecond, StormPhase: time.Second, StormRate: 100, StormChanges: 10}
	r, out := runMiniOn(t, "off", p, 2)
	var gw *report.Throughput
	for i := range r.Throughput {
		if r.Throughput[i].Target == "gateway" {
			gw = &r.Throughput[i]
		}
	}
	if gw == nil || gw.RPS <= 0 || gw.HitRatio <= 0 || gw.HitRatio > 1 || gw.ClosedErrors != 0 || gw.OpenErrors != 0 {
		t.Fatalf("gateway row on a DB-less node: %+v; want requests served from the POSTed configuration, no errors (200 and 401 only)", gw)
	}
	if len(r.Consistency) != 1 {
		t.Fatalf("%d consistency rows, want 1", len(r.Consistency))
	}
	c := r.Consistency[0]
	t.Logf("POST /config row: %d windows, p50 %.1f ms, max %.1f ms; POST p50 %.1f ms over %d", c.Window.N, c.Window.P50, c.Window.Max, c.Write.P50, c.Write.N)
	if c.Via != ViaPostConfig || c.Warm != 8 || c.Cold != 0 || c.Missed != 0 || c.Window.N != 8 || len(c.ByChange) != 4 {
		t.Errorf("consistency row: via %q, %d warm, %d cold, %d missed, %d windows, %d kinds; want %q with 8 warm changes measured, 4 kinds",
			c.Via, c.Warm, c.Cold, c.Missed, c.Window.N, len(c.ByChange), ViaPostConfig)
	}
	// Every change was POSTed to both nodes.
	if c.Write.N != 16 || c.Window.Max < c.Window.P50 || c.RPS <= 0 {
		t.Errorf("consistency row: %d POSTs, window p50 %.1f max %.1f, %.0f rps; want 16 POSTs and a closed loop measured", c.Write.N, c.Window.P50, c.Window.Max, c.RPS)
	}
	if len(r.Recommendations) != 0 {
		t.Errorf("recommendations %q from a DB-less run, want none (db_update_frequency does not apply)", r.Recommendations)
	}
	if r.Storm != nil || !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "storm: not run on DB-less nodes") }) {
		t.Errorf("storm %+v, notes %q; want no storm and a note saying why", r.Storm, r.Notes)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| "+ViaPostConfig+" | - | 8 | 0 | 0 |") {
		t.Errorf("report.md has no %q row:\n%s", ViaPostConfig, md)
	}
}

// TestMiniProfile runs the whole bench on real node processes with a tiny
// profile and checks results.json has sane rows. Nothing about speed is
// asserted.
func TestMiniProfile(t *testing.T) {
	p := Profile{Name: "mini", Consumers: 50, UnknownShare: 0.1, Conns: 4,
		Warmup: 100 * time.Millisecond, Closed: 300 * time.Millisecond, Open: 300 * time.Millisecond, OpenRate: 100,
		Backends: []string{"freecache"}, Frequencies: []float64{0.25},
		Changes: 8, ChangeSpan: time.Second, SettingRPS: 100 * time.Millisecond,
		// Enough requests that node B's CPU time, counted in 10 ms ticks,
		// is never 0 for a phase; two rounds, to check the pooling.
		StormPhase: time.Second, StormRate: 400, StormChanges: 50, StormRounds: stormRounds}
	r, out := runMini(t, p, 2)
	targets := map[string]report.Throughput{}
	for _, row := range r.Throughput {
		targets[row.Target] = row
	}
	want := []string{"direct", bareFastTarget, bareTarget, "gateway"}
	if _, err := exec.LookPath("nginx"); err == nil {
		want = append(want, "nginx")
	}
	for _, want := range want {
		row, ok := targets[want]
		if !ok {
			t.Fatalf("no %s throughput row in %+v", want, r.Throughput)
		}
		if row.RPS <= 0 || row.LatencyMS.P50 <= 0 || row.LatencyMS.P99 < row.LatencyMS.P50 {
			t.Errorf("%s row not sane: %+v", want, row)
		}
	}
	for _, ref := range []string{bareFastTarget, bareTarget} {
		if bare := targets[ref]; bare.CPUMicrosPerRequest <= 0 || bare.ClosedErrors != 0 {
			t.Errorf("%s row: %+v; want CPU measured, no errors", ref, bare)
		}
	}
	gw := targets["gateway"]
	if gw.CacheBackend != "freecache" || gw.HitRatio <= 0 || gw.HitRatio > 1 || gw.CPUMicrosPerRequest <= 0 || gw.ClosedErrors != 0 {
		t.Errorf("gateway row: %+v; want freecache, hit ratio in (0,1], CPU measured, no errors (200 and 401 only)", gw)
	}
	if len(r.Consistency) != 1 {
		t.Fatalf("%d consistency rows, want 1", len(r.Consistency))
	}
	c := r.Consistency[0]
	// 8 changes, each probed on the one other node, all warm.
	if c.Window.N+c.Missed != 8 || c.Window.N == 0 || c.Warm != 8 || c.Cold != 0 || c.DBUpdateFrequencyS != 0.25 || c.Push {
		t.Errorf("consistency row: %d windows + %d missed, %d warm, %d cold at %gs push=%v, want 8 warm at 0.25s push off",
			c.Window.N, c.Missed, c.Warm, c.Cold, c.DBUpdateFrequencyS, c.Push)
	}
	if c.Window.P50 > c.Window.Max || c.Window.P99 != nil || len(c.ByChange) != 4 || c.PollsPerSecPerNode <= 0 || c.Model == nil || c.NodeLag.Count == 0 {
		t.Errorf("consistency row not sane (or a p99 from 8 windows): %+v", c)
	}
	if len(r.Recommendations) == 0 {
		t.Error("no recommendations")
	}
	// The parity note judges the gateway against the bare proxy of this
	// run, not a figure from another machine.
	if !slices.ContainsFunc(r.Notes, func(n string) bool {
		return strings.Contains(n, "gateway/freecache") && strings.Contains(n, "the bare Go proxy measured in this run")
	}) {
		t.Errorf("no parity note against this run's bare proxy in %q", r.Notes)
	}
	for _, f := range []string{"report.md", "report.html", "window_cdf.png", "throughput.png", "latency.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	checkStorm(t, r)
}

// TestConsistencyWindowWarmAndUniform runs the consistency sweep on three
// real node processes at db_update_frequency=1 with 100 changes and checks
// what issue 15 found wrong: every change was made on warm caches, the
// credential revocations measure invalidation (a cold cache answered 401 at
// once, windows near 0), and the windows are within sampling error of the
// poll model, uniform on [0, f] plus the time to apply, as is the nodes'
// own lag histogram. The KS test runs at alpha 0.001, so a correct sweep
// fails it once in a thousand runs; the windows of issue 15 (a quarter near
// 0) fail it from 100 windows on (bench/stats, TestKSSizeAndPower). With
// the credentials left cold, this test failed both the median (0.006 ms)
// and the KS test (D 0.258, p 2e-6). The distribution checks are skipped,
// saying so, when node A's writes queued (a machine busy with other work):
// then changes land in bursts and the model does not apply.
func TestConsistencyWindowWarmAndUniform(t *testing.T) {
	p := Profile{Name: "uniform", Frequencies: []float64{1}, Changes: 100, ChangeSpan: 8 * time.Second}
	r, _ := runMini(t, p, 3, "throughput", "storm")
	if len(r.Consistency) != 1 {
		t.Fatalf("%d consistency rows, want 1", len(r.Consistency))
	}
	c := r.Consistency[0]
	t.Logf("%d windows: p50 %.0f ms, max %.0f ms; model %+v; node lag over %.0f events: p50 %.0f ms", c.Window.N, c.Window.P50, c.Window.Max, c.Model, c.NodeLag.Count, c.NodeLag.P50)
	if c.Window.N != 100 || c.Warm != 100 || c.Cold != 0 || c.Missed != 0 {
		t.Fatalf("%d windows, %d warm, %d cold, %d missed; want 100 warm changes, all measured", c.Window.N, c.Warm, c.Cold, c.Missed)
	}
	// The cold misses of issue 15 answered at once (0.01-0.1 ms); warm,
	// the median of 25 windows uniform on [0, 1 s] is below 50 ms with
	// probability 4e-11 (and it stays well above it when a busy machine
	// bunches the writes).
	if cred := c.ByChange["credential-revoked"]; cred.N != 25 || cred.P50 < 50 {
		t.Errorf("credential-revoked windows: %d, median %.3f ms, max %.3f ms; want 25 with a median above 50 ms (warm caches)", cred.N, cred.P50, cred.Max)
	}
	if c.Model == nil || c.Model.ApplyMS <= 0 || c.Model.ApplyMS > 100 {
		t.Fatalf("model %+v; want an apply time measured by the nodes, under 100 ms", c.Model)
	}
	// The model assumes the changes land at times independent of the
	// polls. Writes that queue on node A (a machine busy with other work)
	// return in bursts and break that; the checks above still hold.
	if c.Write.Max > 100 {
		t.Skipf("node A's writes took up to %.0f ms (p50 %.1f ms), more than a tenth of the interval: too busy a machine to test the distribution", c.Write.Max, c.Write.P50)
	}
	d, pv := stats.KS(c.Windows, stats.Uniform(c.Model.ApplyMS, c.Model.ApplyMS+1000))
	if pv < 0.001 {
		t.Errorf("windows differ from uniform on [%.1f, %.1f] ms by more than sampling error: KS D=%.3f p=%.2g; windows %v",
			c.Model.ApplyMS, c.Model.ApplyMS+1000, d, pv, c.Windows)
	}
	// The inside view agrees: the nodes' lag p50 within the median's
	// sampling error and one bucket (100 ms) of the model's.
	if c.NodeLag.Count < 100 || c.NodeLag.P99 == nil || math.Abs(c.NodeLag.BucketMS-100) > 0.01 || math.Abs(c.NodeLag.P50-c.Model.P50) > 200 {
		t.Errorf("node lag over %.0f events in %.0f ms buckets, p50 %.0f ms; want 100+ events in 100 ms buckets, p50 near the model's %.0f ms", c.NodeLag.Count, c.NodeLag.BucketMS, c.NodeLag.P50, c.Model.P50)
	}
}

// stormRounds is the mini profile's storm rounds.
const stormRounds = 2

// checkStorm checks the storm phase's row: both phases served without
// error, node A took the changes, node B applied them and rebuilt, and the
// processes were pinned where the machine allows it.
func checkStorm(t *testing.T, r *report.Results) {
	t.Helper()
	s := r.Storm
	if s == nil {
		t.Fatal("no storm row")
	}
	t.Logf("storm row: %+v", *s)
	for _, ph := range []report.StormPhase{s.Calm, s.Storm} {
		if ph.Requests == 0 || ph.Errors != 0 || ph.Latency.P99 <= 0 || ph.CPUPercent <= 0 {
			t.Errorf("storm phase not sane: %+v; want requests, no errors, latency and node B's CPU measured", ph)
		}
	}
	if s.NodeBGOMAXPROCS < 1 {
		t.Errorf("node B's GOMAXPROCS = %d, want it read from its metrics", s.NodeBGOMAXPROCS)
	}
	if s.ChangesPerSec <= 0 || s.WriteErrors != 0 {
		t.Errorf("node A took %.1f changes/s with %d errors, want some and none", s.ChangesPerSec, s.WriteErrors)
	}
	if s.Storm.Events <= 0 || s.Storm.Applies <= 0 || s.Storm.ApplyMS <= 0 {
		t.Errorf("node B during the storm: %+v; want events applied and snapshot applies (timed)", s.Storm)
	}
	// The control: the same writes on node C, which node B does not hear
	// (the mini runs are on SQLite).
	if c := s.Control; c == nil || c.Requests == 0 || c.Errors != 0 || c.Events != 0 || s.ControlChangesPerSec <= 0 || s.ControlWriteErrors != 0 {
		t.Errorf("control phase %+v at %.1f changes/s (%d failed); want requests without errors, no event applied on node B, node C's writes made", c, s.ControlChangesPerSec, s.ControlWriteErrors)
	}
	if len(s.Rounds) != max(1, stormRounds) {
		t.Errorf("%d rounds recorded, want %d", len(s.Rounds), max(1, stormRounds))
	}
	for _, rd := range s.Rounds {
		if rd.CalmP99 <= 0 || rd.ControlP99 <= 0 || rd.StormP99 <= 0 {
			t.Errorf("round %+v: want each segment's p99", rd)
		}
	}
	if s.Storm.Requests <= s.Calm.Requests {
		t.Errorf("storm %d requests, calm %d: want the storm segments to run a poll longer", s.Storm.Requests, s.Calm.Requests)
	}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 && !strings.Contains(s.Pinning, "node B, load client") {
		t.Errorf("pinning = %q on %d CPUs with taskset, want node B pinned with this process", s.Pinning, runtime.NumCPU())
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "storm target") }) {
		t.Errorf("no storm target note in %q", r.Notes)
	}
}
