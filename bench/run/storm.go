package run

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/load"
	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// rebuildHist is the histogram of full snapshot rebuilds (applyHist, in
// scale.go, of incremental applies).
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
// contention: node A and the writer process (the writes, SQLite's
// included) run on the first CPUs, node B and this process (load client,
// upstream) on the last one, the same in both phases. What the storm then
// costs on B's CPU is B's own work: fetching and applying the events and
// rebuilding. An external datastore (PostgreSQL, Cassandra) is not pinned.
func (b *bench) storm(ctx context.Context) (*report.Storm, error) {
	return b.stormOn(ctx, stormSite{dir: filepath.Join(b.opts.Out, "storm")})
}

// stormSite is where a storm runs: the nodes' directory (logs, and the
// SQLite file unless env names another), settings added to the nodes'
// environment, the key-auth key the hot route's requests carry when a
// global key-auth plugin is on (the scale dataset), and the wait for a
// node to be ready (0: the harness's).
type stormSite struct {
	dir, key   string
	env        []string
	readyLimit time.Duration
}

// stormOn runs the storm at site.
func (b *bench) stormOn(ctx context.Context, site stormSite) (*report.Storm, error) {
	p := b.opts.Profile
	rounds := max(1, p.StormRounds)
	st := &report.Storm{DBUpdateFrequencyS: stormFrequency, Rate: p.StormRate, PhaseS: p.StormPhase.Seconds(),
		TargetChangesPerSec: p.StormChanges}
	dir := site.dir
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
	// The control segment needs a datastore node B does not poll: a SQLite
	// file of node C's own.
	control := b.opts.Database == "sqlite"
	nodes, perNode, also := 2, [][]string(nil), ""
	if control {
		nodes, perNode = 3, [][]string{nil, nil, {"SLUICE_SQLITE_PATH=" + filepath.Join(dir, "control.db")}}
		if cpus != nil {
			cpus = append(cpus, cpus[0])
		}
		also = fmt.Sprintf(" (first, as a control, %v while node C does)", p.StormPhase)
	}
	b.logf("storm: node B at %d requests/s, %d round(s) of %v calm, then %v while node A takes %d changes/s%s",
		p.StormRate, rounds, p.StormPhase, p.StormPhase, p.StormChanges, also)
	c, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: nodes, Dir: dir, Args: b.args(), CPUs: cpus,
		ReadyTimeout: site.readyLimit, NodeEnv: perNode,
		Env: b.nodeEnv(append(site.env, "SLUICE_DB_UPDATE_FREQUENCY="+strconv.FormatFloat(stormFrequency, 'g', -1, 64))...)})
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
			st.Pinning = fmt.Sprintf("node A (and node C), the storm writer on CPU %s; node B, load client and upstream on CPU %s", cpus[0], cpus[1])
		}
	}

	pre := b.prefix + "-storm"
	hot := "/" + pre + "-hot"
	plugin, err := b.stormSetup(ctx, a, pre, hot)
	if err != nil {
		return st, err
	}
	var nc *harness.Node
	var ncPlugin string
	if control {
		nc = c.Nodes[2]
		if ncPlugin, err = b.stormSetup(ctx, nc, pre, hot); err != nil {
			return st, err
		}
		st.Control = &report.StormPhase{}
	}
	if _, ok := probe(ctx, nb, hot, site.key, http.StatusOK, time.Now(), 15*time.Second, time.Millisecond); !ok {
		return st, fmt.Errorf("bench: storm: %s not routed on %s", hot, nb.Name)
	}
	target := load.Options{URL: nb.ProxyURL + hot, Rate: p.StormRate}
	if site.key != "" {
		h := http.Header{"Apikey": {site.key}}
		target.Header = func(*rand.Rand) http.Header { return h }
	}
	target.Duration = time.Second
	load.Open(ctx, target) // warm-up: connections, caches
	target.Duration = p.StormPhase

	// phase measures one segment; start, when not nil, starts its writes
	// and returns the function that stops them. The writes last the
	// segment's length; its requests go on for one poll more, so that node
	// B applies every change of the segment inside it. Node B's counters
	// are added to ph, its latencies returned.
	phase := func(ph *report.StormPhase, start func() (stop func(), err error)) (load.Summary, error) {
		before, err := scrape.Get(ctx, nb.StatusURL+"/metrics")
		if err != nil {
			return load.Summary{}, fmt.Errorf("bench: storm: %w", err)
		}
		cpu0, _ := procstat.CPU(nb.Pid())
		t0 := time.Now()
		t := target
		stopped := make(chan struct{})
		if start == nil {
			close(stopped)
		} else {
			stop, err := start()
			if err != nil {
				return load.Summary{}, err
			}
			time.AfterFunc(t.Duration, func() { stop(); close(stopped) })
			t.Duration += time.Duration(stormFrequency * float64(time.Second))
		}
		sum := load.Open(ctx, t)
		<-stopped
		cpu1, _ := procstat.CPU(nb.Pid())
		after, err := scrape.Get(ctx, nb.StatusURL+"/metrics")
		if err != nil {
			return load.Summary{}, fmt.Errorf("bench: storm: %w", err)
		}
		ph.CPUSeconds += (cpu1 - cpu0).Seconds()
		ph.WallSeconds += time.Since(t0).Seconds()
		ph.Applies += after.Sum(applyHist+"_count") - before.Sum(applyHist+"_count")
		ph.ApplyMS += 1000 * (after.Sum(applyHist+"_sum") - before.Sum(applyHist+"_sum"))
		ph.Rebuilds += after.Sum(rebuildHist+"_count") - before.Sum(rebuildHist+"_count")
		ph.RebuildMS += 1000 * (after.Sum(rebuildHist+"_sum") - before.Sum(rebuildHist+"_sum"))
		ph.Events += after.Sum("sluice_cluster_events_applied_total") - before.Sum("sluice_cluster_events_applied_total")
		st.NodeBGOMAXPROCS = int(after.Sum("go_sched_gomaxprocs_threads"))
		return sum, nil
	}
	writerCPUs := ""
	if cpus != nil {
		writerCPUs = cpus[0]
	}
	settle := func() error {
		select {
		case <-time.After(stormSettle):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// writes measures one segment of w's writes into ph; it returns the
	// segment's latencies, what w did and how long it wrote.
	writes := func(ph *report.StormPhase, w StormWriter) (load.Summary, StormResult, time.Duration, error) {
		var wres StormResult
		var werr error
		var wrote time.Duration
		sum, err := phase(ph, func() (func(), error) {
			start := time.Now()
			stop, err := b.startWriter(w, writerCPUs)
			if err != nil {
				return nil, err
			}
			return func() { wres, werr = stop(); wrote = time.Since(start) }, nil
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return sum, wres, 0, err
		}
		if wres.FirstError != "" {
			b.logf("  storm: first failed change on %s: %s", w.AdminURL, wres.FirstError)
		}
		return sum, wres, wrote, nil
	}
	var calm, controls, storm []load.Summary
	var stormWall, controlWall time.Duration
	controlWrites := 0
	for round := range rounds {
		c, err := phase(&st.Calm, nil)
		if err != nil {
			return st, err
		}
		var cs load.Summary
		if control {
			w := StormWriter{AdminURL: nc.AdminURL, Plugin: ncPlugin, Service: pre + "-other", Prefix: fmt.Sprintf("%s-c%d", pre, round), Rate: p.StormChanges}
			sum, res, wrote, err := writes(st.Control, w)
			if err != nil {
				return st, err
			}
			cs = sum
			controlWrites += res.Writes
			controlWall += wrote
			st.ControlWriteErrors += res.Errors
			controls = append(controls, cs)
			if err := settle(); err != nil {
				return st, err
			}
		}
		// Each round's writer adds routes of its own prefix.
		w := StormWriter{AdminURL: a.AdminURL, Plugin: plugin, Service: pre + "-other", Prefix: fmt.Sprintf("%s-%d", pre, round), Rate: p.StormChanges}
		sm, res, wrote, err := writes(&st.Storm, w)
		if err != nil {
			return st, err
		}
		stormWall += wrote
		st.Writes += res.Writes
		st.WriteErrors += res.Errors
		calm, storm = append(calm, c), append(storm, sm)
		r := report.StormRound{CalmP99: c.Latency.P99, ControlP99: cs.Latency.P99, StormP99: sm.Latency.P99}
		st.Rounds = append(st.Rounds, r)
		ctl := ""
		if control {
			ctl = fmt.Sprintf(", control p99 %.2f ms (max %.2f)", cs.Latency.P99, cs.Latency.Max)
		}
		b.logf("  round %d/%d: calm p99 %.2f ms (max %.2f)%s, storm p99 %.2f ms (max %.2f)", round+1, rounds,
			c.Latency.P99, c.Latency.Max, ctl, sm.Latency.P99, sm.Latency.Max)
		if round < rounds-1 {
			if err := settle(); err != nil {
				return st, err
			}
		}
	}
	fill(&st.Calm, load.Merge(calm...))
	fill(&st.Storm, load.Merge(storm...))
	if st.Control != nil {
		fill(st.Control, load.Merge(controls...))
		st.ControlChangesPerSec = float64(controlWrites) / controlWall.Seconds()
		b.logf("  control: p50 %.2f p99 %.2f max %.2f ms, %d errors, node B %.0f%% CPU, %.0f events applied (none expected)",
			st.Control.Latency.P50, st.Control.Latency.P99, st.Control.Latency.Max, st.Control.Errors, st.Control.CPUPercent, st.Control.Events)
	}
	st.ChangesPerSec = float64(st.Writes) / stormWall.Seconds()
	b.logf("  calm:  p50 %.2f p99 %.2f max %.2f ms, %d errors, node B %.0f%% CPU",
		st.Calm.Latency.P50, st.Calm.Latency.P99, st.Calm.Latency.Max, st.Calm.Errors, st.Calm.CPUPercent)
	b.logf("  storm: p50 %.2f p99 %.2f max %.2f ms, %d errors, node B %.0f%% CPU; %.0f changes/s (%d failed), node B applied %.0f events in %.0f incremental applies (%.1f ms) and rebuilt %.0f snapshots in %.1f ms",
		st.Storm.Latency.P50, st.Storm.Latency.P99, st.Storm.Latency.Max, st.Storm.Errors, st.Storm.CPUPercent,
		st.ChangesPerSec, st.WriteErrors, st.Storm.Events, st.Storm.Applies, st.Storm.ApplyMS, st.Storm.Rebuilds, st.Storm.RebuildMS)
	return st, nil
}

// fill sets a phase's requests, errors and latency from the load client's
// summary of its segments, and node B's CPU share over them.
func fill(p *report.StormPhase, sum load.Summary) {
	p.Requests, p.Errors = sum.Requests, sum.Errors
	p.Latency = report.Latency{P50: sum.Latency.P50, P90: sum.Latency.P90, P99: sum.Latency.P99, P999: sum.Latency.P999, Max: sum.Latency.Max}
	if p.WallSeconds > 0 {
		p.CPUPercent = 100 * p.CPUSeconds / p.WallSeconds
	}
}

// stormSettle is the pause after each writing segment (which ends a poll
// after its last change), before the next segment.
const stormSettle = 500 * time.Millisecond

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

// StormWriter is the storm's writer. It runs in a process of its own
// (`sluice bench stormwriter`), pinned beside node A, so that the writes'
// client work lands on node A's CPUs, not on node B's.
type StormWriter struct {
	// AdminURL is node A's Admin API; Plugin the request-termination
	// plugin to PATCH; Service the service to add routes to, and Prefix
	// the routes' path prefix.
	AdminURL, Plugin, Service, Prefix string
	// Rate is the changes per second.
	Rate int
}

// StormResult is what a storm writer did; it prints it as JSON on exit.
type StormResult struct {
	Writes     int    `json:"writes"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// Run makes w.Rate changes per second on its node until ctx is done: half
// rewrite the plugin's config (applied to the plugin set of every node that
// hears it), half add a route (added to every route table). Writers run
// concurrently because each write waits for its node's own apply. A write
// cut off by ctx is not counted.
func (w StormWriter) Run(ctx context.Context) StormResult {
	a := &harness.Node{Name: "node A", AdminURL: w.AdminURL}
	tick := time.NewTicker(time.Second / time.Duration(w.Rate))
	defer tick.Stop()
	var mu sync.Mutex
	var res StormResult
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				var err error
				if i%2 == 0 {
					_, err = a.MustAdmin(ctx, http.MethodPatch, "/plugins/"+w.Plugin, url.Values{"config.message": {fmt.Sprintf("m%d-%d", g, i)}}, http.StatusOK)
				} else {
					_, err = a.MustAdmin(ctx, http.MethodPost, "/services/"+w.Service+"/routes", url.Values{"paths[]": {fmt.Sprintf("/%s-o%d-%d", w.Prefix, g, i)}}, http.StatusCreated)
				}
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				res.Writes++
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// startWriter starts the storm writer process, on cpus when not "".
// stop ends it and returns what it did.
func (b *bench) startWriter(w StormWriter, cpus string) (stop func() (StormResult, error), err error) {
	args := []string{"bench", "stormwriter", "-admin", w.AdminURL, "-plugin", w.Plugin, "-service", w.Service,
		"-prefix", w.Prefix, "-rate", strconv.Itoa(w.Rate)}
	cmd := harness.Command(cpus, b.opts.Binary, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: storm writer: %w", err)
	}
	return func() (StormResult, error) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var res StormResult
		if err := cmd.Wait(); err != nil {
			return res, fmt.Errorf("bench: storm writer: %w: %s", err, strings.TrimSpace(errOut.String()))
		}
		if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
			return res, fmt.Errorf("bench: storm writer printed %q: %w", out.String(), err)
		}
		return res, nil
	}, nil
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
