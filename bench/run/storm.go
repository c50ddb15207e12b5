package run

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/load"
	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// rebuildHist is node B's histogram of snapshot rebuild times.
const rebuildHist = "sluice_snapshot_rebuild_duration_seconds"

// stormFrequency is the storm cluster's db_update_frequency: B applies the
// storm's events in batches at least this often (at once with push).
const stormFrequency = 1.0

// storm measures what an invalidation storm costs the proxy (Kong's router
// rebuild spikes, Kong/kong#4974): node B serves fixed-rate traffic, first
// calm, then while node A takes Profile.StormChanges configuration changes
// per second; the target is B's p99 within 2x its calm value.
//
// On two or more CPUs the run separates the storm's cost to B from CPU
// contention: node A (and with it the writes, including SQLite's) runs on
// the first CPUs, node B and this process (load client, upstream, the
// paced writer's few requests) on the last one. What the storm then costs
// on B's CPU is B's own work: fetching and applying the events and
// rebuilding. An external datastore (PostgreSQL, Cassandra) is not pinned.
func (b *bench) storm(ctx context.Context) (*report.Storm, error) {
	p := b.opts.Profile
	st := &report.Storm{DBUpdateFrequencyS: stormFrequency, Rate: p.StormRate, PhaseS: p.StormPhase.Seconds(), TargetChangesPerSec: p.StormChanges}
	dir := filepath.Join(b.opts.Out, "storm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, fmt.Errorf("bench: %w", err)
	}
	var cpus []string
	last := runtime.NumCPU() - 1
	if _, err := exec.LookPath("taskset"); err == nil && last >= 1 {
		first := "0"
		if last > 1 {
			first = "0-" + strconv.Itoa(last-1)
		}
		cpus = []string{first, strconv.Itoa(last)}
	}
	b.logf("storm: node B at %d requests/s, %v calm then %v while node A takes %d changes/s", p.StormRate, p.StormPhase, p.StormPhase, p.StormChanges)
	c, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: 2, Dir: dir, Args: b.args(), CPUs: cpus,
		Env: b.nodeEnv("SLUICE_DB_UPDATE_FREQUENCY=" + strconv.FormatFloat(stormFrequency, 'g', -1, 64))})
	if err != nil {
		return st, fmt.Errorf("bench: storm: %w", err)
	}
	defer c.Stop()
	a, nb := c.Nodes[0], c.Nodes[1]
	if cpus != nil {
		restore, err := pinSelf(cpus[1])
		if err != nil {
			b.logf("storm: %v; running with this process unpinned", err)
			st.Pinning = fmt.Sprintf("node A on CPU %s, node B on CPU %s, this process unpinned (%v)", cpus[0], cpus[1], err)
		} else {
			defer restore()
			st.Pinning = fmt.Sprintf("node A on CPU %s; node B, load client, upstream and writer on CPU %s", cpus[0], cpus[1])
		}
	}

	pre := b.prefix + "-storm"
	hot := "/" + pre + "-hot"
	plugin, err := b.stormSetup(ctx, a, pre, hot)
	if err != nil {
		return st, err
	}
	if _, ok := probe(ctx, nb, hot, "", http.StatusOK, time.Now(), 15*time.Second); !ok {
		return st, fmt.Errorf("bench: storm: %s not routed on %s", hot, nb.Name)
	}
	target := load.Options{URL: nb.ProxyURL + hot, Rate: p.StormRate}
	target.Duration = time.Second
	load.Open(ctx, target) // warm-up: connections, caches
	target.Duration = p.StormPhase

	phase := func(writes func(stop <-chan struct{})) (report.StormPhase, error) {
		before, err := scrape.Get(ctx, nb.StatusURL+"/metrics")
		if err != nil {
			return report.StormPhase{}, fmt.Errorf("bench: storm: %w", err)
		}
		cpu0, _ := procstat.CPU(nb.Pid())
		stop, done := make(chan struct{}), make(chan struct{})
		go func() { defer close(done); writes(stop) }()
		start := time.Now()
		sum := load.Open(ctx, target)
		close(stop)
		<-done
		cpu1, _ := procstat.CPU(nb.Pid())
		after, err := scrape.Get(ctx, nb.StatusURL+"/metrics")
		if err != nil {
			return report.StormPhase{}, fmt.Errorf("bench: storm: %w", err)
		}
		ph := report.StormPhase{Requests: sum.Requests, Errors: sum.Errors,
			Latency:    report.Latency{P50: sum.Latency.P50, P90: sum.Latency.P90, P99: sum.Latency.P99, P999: sum.Latency.P999, Max: sum.Latency.Max},
			CPUPercent: 100 * (cpu1 - cpu0).Seconds() / time.Since(start).Seconds(),
			Rebuilds:   after.Sum(rebuildHist+"_count") - before.Sum(rebuildHist+"_count"),
			RebuildMS:  1000 * (after.Sum(rebuildHist+"_sum") - before.Sum(rebuildHist+"_sum")),
			Events:     after.Sum("sluice_cluster_events_applied_total") - before.Sum("sluice_cluster_events_applied_total")}
		return ph, nil
	}
	if st.Calm, err = phase(func(<-chan struct{}) {}); err != nil {
		return st, err
	}
	b.logf("  calm:  p50 %.2f p99 %.2f max %.2f ms, %d errors, node B %.0f%% CPU",
		st.Calm.Latency.P50, st.Calm.Latency.P99, st.Calm.Latency.Max, st.Calm.Errors, st.Calm.CPUPercent)
	var writes, writeErrs atomic.Int64
	start := time.Now()
	if st.Storm, err = phase(func(stop <-chan struct{}) {
		b.stormWrites(ctx, a, pre, plugin, p.StormChanges, stop, &writes, &writeErrs)
	}); err != nil {
		return st, err
	}
	st.ChangesPerSec = float64(writes.Load()) / time.Since(start).Seconds()
	st.WriteErrors = int(writeErrs.Load())
	b.logf("  storm: p50 %.2f p99 %.2f max %.2f ms, %d errors, node B %.0f%% CPU; %.0f changes/s (%d failed), node B applied %.0f events and rebuilt %.0f snapshots in %.1f ms",
		st.Storm.Latency.P50, st.Storm.Latency.P99, st.Storm.Latency.Max, st.Storm.Errors, st.Storm.CPUPercent,
		st.ChangesPerSec, st.WriteErrors, st.Storm.Events, st.Storm.Rebuilds, st.Storm.RebuildMS)
	return st, nil
}

// stormSetup creates the storm's entities on a: the hot route B serves,
// and a service with a request-termination plugin the storm rewrites. It
// returns the plugin's id.
func (b *bench) stormSetup(ctx context.Context, a *harness.Node, pre, hot string) (string, error) {
	steps := []struct {
		path string
		form url.Values
	}{
		{"/services", url.Values{"name": {pre + "-hot"}, "url": {b.upstream}}},
		{"/services/" + pre + "-hot/routes", url.Values{"paths[]": {hot}}},
		{"/services", url.Values{"name": {pre + "-other"}, "url": {b.upstream}}},
		{"/services/" + pre + "-other/plugins", url.Values{"name": {"request-termination"}, "config.status_code": {"418"}}},
	}
	var body []byte
	for _, s := range steps {
		var err error
		if body, err = a.MustAdmin(ctx, http.MethodPost, s.path, s.form, http.StatusCreated); err != nil {
			return "", fmt.Errorf("bench: storm setup: %w", err)
		}
	}
	var plugin struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &plugin); err != nil || plugin.ID == "" {
		return "", fmt.Errorf("bench: storm setup: no plugin id in %.200s", body)
	}
	return plugin.ID, nil
}

// stormWrites makes rate changes per second on a until stop: half rewrite
// the plugin's config (a plugins-iterator rebuild on every node), half add
// a route (a route-table rebuild). Writers run concurrently because each
// write waits for node A's own rebuild.
func (b *bench) stormWrites(ctx context.Context, a *harness.Node, pre, plugin string, rate int, stop <-chan struct{}, writes, errs *atomic.Int64) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				var err error
				if i%2 == 0 {
					_, err = a.MustAdmin(ctx, http.MethodPatch, "/plugins/"+plugin, url.Values{"config.message": {fmt.Sprintf("m%d-%d", w, i)}}, http.StatusOK)
				} else {
					_, err = a.MustAdmin(ctx, http.MethodPost, "/services/"+pre+"-other/routes", url.Values{"paths[]": {fmt.Sprintf("/%s-o%d-%d", pre, w, i)}}, http.StatusCreated)
				}
				writes.Add(1)
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
}

// pinSelf runs every thread of this process on cpus (taskset -c syntax)
// and returns a function that restores the CPU list it had. Threads the
// Go runtime starts later inherit the list from the thread starting them.
func pinSelf(cpus string) (restore func(), err error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("cannot read this process's CPU list: %w", err)
	}
	var orig string
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "Cpus_allowed_list" {
			orig = strings.TrimSpace(v)
		}
	}
	if orig == "" {
		return nil, fmt.Errorf("no Cpus_allowed_list in /proc/self/status")
	}
	set := func(list string) error {
		out, err := exec.Command("taskset", "-a", "-p", "-c", list, strconv.Itoa(os.Getpid())).CombinedOutput()
		if err != nil {
			return fmt.Errorf("taskset -a -p -c %s: %w: %s", list, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := set(cpus); err != nil {
		return nil, err
	}
	return func() { _ = set(orig) }, nil
}
