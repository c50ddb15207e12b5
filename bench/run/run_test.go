package run

import (
	"context"
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
)

// runMini runs the bench with profile p and nodes nodes on real node
// processes of a freshly built binary (skipped with -short) and returns
// its results.json and report directory.
func runMini(t *testing.T, p Profile, nodes int) (*report.Results, string) {
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
	if _, err := Run(ctx, Options{Binary: bin, Profile: p, Out: out, Database: "sqlite", Nodes: nodes}); err != nil {
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

// TestMiniProfile runs the whole bench on real node processes with a tiny
// profile and checks results.json has sane rows. Nothing about speed is
// asserted.
func TestMiniProfile(t *testing.T) {
	p := Profile{Name: "mini", Consumers: 50, UnknownShare: 0.1, Conns: 4,
		Warmup: 100 * time.Millisecond, Closed: 300 * time.Millisecond, Open: 300 * time.Millisecond, OpenRate: 100,
		Backends: []string{"freecache"}, Frequencies: []float64{0.25},
		RoundsBudget: time.Second, MinRounds: 2, MaxRounds: 2, SettingRPS: 100 * time.Millisecond,
		// Longer than the storm's 1 s poll, so that node B applies the
		// storm's events inside the phase; enough requests that node B's
		// CPU time, counted in 10 ms ticks, is never 0 for a phase.
		StormPhase: 1500 * time.Millisecond, StormRate: 400, StormChanges: 50}
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
	// 2 rounds x 4 changes x 1 other node.
	if c.Samples+c.Missed != 8 || c.Samples == 0 || c.DBUpdateFrequencyS != 0.25 || c.Push {
		t.Errorf("consistency row: %d samples + %d missed at %gs push=%v, want 8 at 0.25s push off", c.Samples, c.Missed, c.DBUpdateFrequencyS, c.Push)
	}
	if c.WindowMS.P50 > c.WindowMS.P99 || c.WindowMS.P99 > c.WindowMS.Max || len(c.ByChange) != 4 || c.PollsPerSecPerNode <= 0 {
		t.Errorf("consistency row not sane: %+v", c)
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
	if s.Storm.Events <= 0 || s.Storm.Rebuilds <= 0 || s.Storm.RebuildMS <= 0 {
		t.Errorf("node B during the storm: %+v; want events applied and snapshots rebuilt (timed)", s.Storm)
	}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 && !strings.Contains(s.Pinning, "node B, load client") {
		t.Errorf("pinning = %q on %d CPUs with taskset, want node B pinned with this process", s.Pinning, runtime.NumCPU())
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "storm target") }) {
		t.Errorf("no storm target note in %q", r.Notes)
	}
}
