// Package cluster is `sluice bench --cluster`: it measures a running
// cluster it does not own, Sluice's or Kong's, through the Admin API and
// the proxies listed in a cluster file. It discovers each node's settings
// from GET /, writes only canary entities (tagged CanaryTag, named
// CanaryPrefix..., routed under CanaryPathRoot) through one node, probes
// every node's proxy until each change shows, reads the nodes' own
// invalidation figures where they expose them, optionally sends open-loop
// load through the load balancer, and writes the local bench's report
// (bench/report) with a cluster object. It deletes its canary entities at
// the end, on Ctrl-C, and (after a crash) on the next run or Cleanup.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
	benchrun "github.com/sluice-gw/sluice/bench/run"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// Options configures a run. The zero value of each field means the
// default its comment gives.
type Options struct {
	// File is the loaded cluster file, FilePath where it came from.
	File     *File
	FilePath string
	// Out is the report directory.
	Out string
	// Rounds of 4 changes each; 0 means 40 (with 3 nodes, 320 windows:
	// enough for a 95 % bound on p99).
	Rounds int
	// ProbeInterval is the pause between two probes of one change on one
	// node; 0 means 10ms.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a change may stay unseen on a node before it
	// counts as missed; 0 means 2 x db_update_frequency + 5s.
	ProbeTimeout time.Duration
	// Load is the optional open-loop run (off when Load.Rate is 0).
	Load LoadOptions
	// Progress receives one line per step (nil: none).
	Progress io.Writer
	// Command is recorded in the report.
	Command string
}

// kinds are the change kinds of a round, in report order.
var kinds = []string{"route-created", "plugin-added", "route-deleted", "credential-revoked"}

// run is one run's state.
type run struct {
	opts   Options
	start  time.Time
	id     string
	res    *report.Results
	c      *report.Cluster
	admins []*admin
	client *http.Client // proxies and metrics
	probe  *prober
	freq   time.Duration
	// samples[node][kind] are the windows (ms); missed[node][kind] the
	// changes unseen. Guarded by mu.
	mu      sync.Mutex
	samples []map[string][]float64
	missed  []map[string]int
}

// Run measures the cluster and writes the report into opts.Out. It returns
// the results even with an error, when there is something to report.
func Run(ctx context.Context, opts Options) (*report.Results, error) {
	f := opts.File
	if opts.Load.Rate > 0 && f.LoadBalancer == "" {
		return nil, errors.New("bench --cluster: --load needs load_balancer in the cluster file")
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 40
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 10 * time.Millisecond
	}
	tr, err := f.transport()
	if err != nil {
		return nil, err
	}
	r := &run{opts: opts, start: time.Now(), id: fmt.Sprintf("%x%s", time.Now().Unix(), randomHex(2)),
		client: &http.Client{Transport: tr, Timeout: adminTimeout}}
	r.c = &report.Cluster{File: opts.FilePath, RunID: r.id, LoadBalancer: f.LoadBalancer, ByChange: map[string]report.Window{}}
	r.res = &report.Results{Schema: report.SchemaVersion, StartedAt: r.start, Profile: "cluster", Nodes: len(f.Nodes),
		Machine: benchrun.Machine(), Command: opts.Command, Cluster: r.c}
	for _, n := range f.Nodes {
		r.admins = append(r.admins, &admin{node: n.Name, base: strings.TrimRight(n.Admin, "/"), token: f.AdminToken, client: r.client})
		r.c.Nodes = append(r.c.Nodes, report.ClusterNode{Name: n.Name, Admin: n.Admin, Proxy: strings.TrimRight(n.Proxy, "/"), Metrics: n.Metrics})
	}
	var errs []error
	r.discover(ctx)
	if err := r.consistency(ctx); err != nil {
		errs = append(errs, err)
	}
	if opts.Load.Rate > 0 && ctx.Err() == nil {
		url := strings.TrimRight(f.LoadBalancer, "/") + opts.Load.Path
		r.logf("load: %d requests/s for %v to %s", opts.Load.Rate, opts.Load.Duration, url)
		r.c.Load = openLoop(ctx, &http.Client{Transport: tr, Timeout: 10 * time.Second}, url, opts.Load)
		r.logf("load: %d requests, p50 %.1f p99 %.1f ms, %d errors", r.c.Load.Requests, r.c.Load.LatencyMS.P50, r.c.Load.LatencyMS.P99, r.c.Load.Errors)
	}
	for _, b := range r.c.Budgets {
		r.res.Recommendations = append(r.res.Recommendations, b.Text)
	}
	r.res.DurationS = time.Since(r.start).Seconds()
	if err := report.Write(opts.Out, r.res); err != nil {
		errs = append(errs, err)
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("bench --cluster: interrupted: %w", ctx.Err()))
	}
	return r.res, errors.Join(errs...)
}

// Cleanup deletes every canary entity (of any run) through the first
// node whose Admin API lists them, and returns how many it deleted and how
// many are left.
func Cleanup(ctx context.Context, f *File) (deleted, left int, err error) {
	tr, err := f.transport()
	if err != nil {
		return 0, 0, err
	}
	client := &http.Client{Transport: tr, Timeout: adminTimeout}
	var errs []error
	for _, n := range f.Nodes {
		a := &admin{node: n.Name, base: strings.TrimRight(n.Admin, "/"), token: f.AdminToken, client: client}
		d, l, err := cleanup(ctx, a, CanaryTag)
		if err == nil {
			return d, l, nil
		}
		deleted += d
		errs = append(errs, err)
	}
	return deleted, -1, errors.Join(errs...)
}

func (r *run) logf(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
	}
}

// discover reads every node's settings; the slowest db_update_frequency
// paces the rounds.
func (r *run) discover(ctx context.Context) {
	var dbs []string
	freq := 0.0
	for i := range r.c.Nodes {
		n := &r.c.Nodes[i]
		if err := discover(ctx, r.admins[i], n); err != nil {
			n.Probe = "GET / failed, settings unknown: " + err.Error()
			r.logf("%s: %v", n.Name, err)
			continue
		}
		r.logf("%s: %s %s, database=%s, db_update_frequency=%gs, db_update_propagation=%gs, push=%s", n.Name, n.Product, n.Version,
			n.Database, n.DBUpdateFrequencyS, n.DBUpdatePropagationS, pushString(n.Push))
		if !slices.Contains(dbs, n.Database) {
			dbs = append(dbs, n.Database)
		}
		freq = max(freq, n.DBUpdateFrequencyS+n.DBUpdatePropagationS)
	}
	if freq == 0 {
		freq = 5 // Kong's default db_update_frequency
	}
	r.freq = time.Duration(freq * float64(time.Second))
	r.res.Database = strings.Join(dbs, ",")
	if r.opts.ProbeTimeout <= 0 {
		r.opts.ProbeTimeout = 2*r.freq + 5*time.Second
	}
	r.probe = &prober{client: &http.Client{Transport: r.client.Transport, Timeout: 2 * time.Second}, interval: r.opts.ProbeInterval}
}

func pushString(p *bool) string {
	if p == nil {
		return "n/a"
	}
	return map[bool]string{true: "on", false: "off"}[*p]
}

// consistency sets up the canary, probes the rounds and cleans up. It
// says in r.c.NotProbed why when it cannot probe at all.
func (r *run) consistency(ctx context.Context) error {
	var why []string
	var can *canary
	writer := -1
	for i := range r.c.Nodes {
		n := &r.c.Nodes[i]
		if dbless(n) {
			n.Probe = "no: DB-less (database=off): its entities come from its declarative configuration, not from a datastore the canary could be written to"
			why = append(why, n.Name+": DB-less")
			continue
		}
		if writer >= 0 || strings.HasPrefix(n.Probe, "GET / failed") {
			continue
		}
		stale, _, err := cleanup(ctx, r.admins[i], CanaryTag)
		if err != nil && !refused(err) {
			r.logf("%s: cleanup of earlier runs' canary entities: %v", n.Name, err)
		}
		r.c.Cleanup.Stale += stale
		if stale > 0 {
			r.logf("%s: deleted %d canary entities left by an earlier run", n.Name, stale)
		}
		can = newCanary(r.admins[i], r.id)
		r.logf("canary: writing %d rounds' entities through %s (tag %s, paths under %s%s/)", r.opts.Rounds, n.Name, CanaryTag, CanaryPathRoot, r.id)
		err = can.setup(ctx, r.opts.Rounds)
		if err == nil {
			writer = i
			break
		}
		r.finishCleanup(r.admins[i])
		if !refused(err) {
			return fmt.Errorf("bench --cluster: canary setup on %s: %w", n.Name, err)
		}
		n.Probe = "no writes: the Admin API refused the canary write (" + err.Error() + "); probed as a reader if another node takes the writes"
		why = append(why, fmt.Sprintf("%s: Admin API refused writes (%v)", n.Name, err))
		r.logf("%s: consistency cannot be probed from here: %v", n.Name, err)
	}
	if writer < 0 {
		r.c.NotProbed = "no node's Admin API took the canary writes: " + strings.Join(why, "; ") + ". Discovery, the nodes' own metrics and the load (when asked) are still reported."
		for i := range r.c.Nodes {
			if r.c.Nodes[i].Probe == "" {
				r.c.Nodes[i].Probe = "no: nothing to probe without a writable Admin API"
			}
		}
		r.insideOnly(ctx)
		return nil
	}
	defer r.finishCleanup(r.admins[writer])
	r.c.Writer = r.c.Nodes[writer].Name
	r.c.Nodes[writer].Writer = true
	return r.probeRounds(ctx, can, writer)
}

// finishCleanup deletes this run's canary entities even when ctx was
// cancelled (Ctrl-C), with a minute of its own.
func (r *run) finishCleanup(a *admin) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, left, err := cleanup(ctx, a, runTagPrefix+r.id)
	r.c.Cleanup.Deleted += d
	r.c.Cleanup.Left = left
	if err != nil {
		r.c.Cleanup.Errors = append(r.c.Cleanup.Errors, err.Error())
	}
	r.logf("canary cleanup through %s: %d deleted, %d left%s", a.node, d, left, errSuffix(err))
}

func errSuffix(err error) string {
	if err != nil {
		return ": " + err.Error()
	}
	return ""
}

// readers are the nodes probed: every node but the DB-less ones.
func (r *run) readers() []int {
	var out []int
	for i := range r.c.Nodes {
		if !dbless(&r.c.Nodes[i]) {
			out = append(out, i)
		}
	}
	return out
}

// probeRounds waits for the setup on every node, then runs the rounds.
func (r *run) probeRounds(ctx context.Context, can *canary, writer int) error {
	c := r.c
	probed := r.readers()
	c.Rounds, c.ProbeIntervalMS, c.ProbeTimeoutS = r.opts.Rounds, float64(r.opts.ProbeInterval)/1e6, r.opts.ProbeTimeout.Seconds()
	c.MaxProbeRPSPerNode = float64(len(kinds)) * float64(time.Second) / float64(r.opts.ProbeInterval)
	r.samples, r.missed = make([]map[string][]float64, len(c.Nodes)), make([]map[string]int, len(c.Nodes))
	for i := range c.Nodes {
		r.samples[i], r.missed[i] = map[string][]float64{}, map[string]int{}
	}
	r.waitSetup(ctx, can, probed)
	before := r.scrapeAll(ctx)
	r.logf("probing: %d rounds of %d changes on %s, %d nodes probed every %v (at most %.0f requests/s per node), unseen after %v = missed",
		r.opts.Rounds, len(kinds), c.Writer, len(probed), r.opts.ProbeInterval, c.MaxProbeRPSPerNode, r.opts.ProbeTimeout)
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(uint64(t0.UnixNano()), 14))
	var err error
	for i := 0; i < r.opts.Rounds && ctx.Err() == nil; i++ {
		if err = r.round(ctx, can, i, writer, probed, rng); err != nil {
			break
		}
		r.logf("round %d/%d done; %s", i+1, r.opts.Rounds, r.roundSummary())
	}
	elapsed := time.Since(t0)
	c.ProbeRequests, c.ProbeSeconds = int(r.probe.sent.Load()), elapsed.Seconds()
	after := r.scrapeAll(context.WithoutCancel(ctx))
	r.summarize(before, after, elapsed, writer)
	return err
}

// waitSetup waits until each probed node shows the last round's entities;
// a node that does not within 3 x frequency + 10s is noted, and its
// changes will count as missed.
func (r *run) waitSetup(ctx context.Context, can *canary, probed []int) {
	limit := 3*r.freq + 10*time.Second
	last := can.rounds[len(can.rounds)-1]
	start := time.Now()
	var wg sync.WaitGroup
	for _, i := range probed {
		n := &r.c.Nodes[i]
		wg.Go(func() {
			for _, pr := range []struct{ path, key string }{{last.plugPath, ""}, {last.delPath, ""}, {can.keyPath, last.key}} {
				if _, ok := r.probe.until(ctx, n.Proxy, pr.path, pr.key, http.StatusOK, start, limit); !ok {
					n.Probe = fmt.Sprintf("yes, but the canary setup was not visible within %v: every change counts as missed", limit)
					n.Lagging, n.LagNote = true, fmt.Sprintf("canary setup not visible within %v", limit)
					return
				}
			}
			if n.Probe == "" || strings.HasPrefix(n.Probe, "no writes") {
				n.Probe = "yes" + strings.TrimPrefix(n.Probe, "no writes")
			}
		})
	}
	wg.Wait()
	r.logf("canary setup visible on the nodes after %v", time.Since(start).Round(time.Millisecond))
}

// round checks that every node shows the round's "before" state, waits a
// random fraction of the poll interval (so that writes do not line up with
// polls), makes the 4 changes at once and probes every node for each.
func (r *run) round(ctx context.Context, can *canary, i, writer int, probed []int, rng *rand.Rand) error {
	a, e := r.admins[writer], can.rounds[i]
	changes := []change{
		{kind: "route-created", path: e.newPath, before: http.StatusNotFound, wanted: http.StatusOK, do: func(ctx context.Context) error {
			_, err := a.create(ctx, "/services/"+can.svc+"/routes", can.with(map[string]any{"name": can.name(fmt.Sprintf("r%d-new", i)), "paths": []string{e.newPath}}))
			return err
		}},
		{kind: "plugin-added", path: e.plugPath, before: http.StatusOK, wanted: http.StatusTeapot, do: func(ctx context.Context) error {
			_, err := a.create(ctx, "/routes/"+e.plugRoute+"/plugins", can.with(map[string]any{"name": "request-termination", "config": map[string]any{"status_code": http.StatusTeapot}}))
			return err
		}},
		{kind: "route-deleted", path: e.delPath, before: http.StatusOK, wanted: http.StatusNotFound, do: func(ctx context.Context) error {
			return a.del(ctx, "/routes/"+e.delRoute)
		}},
		{kind: "credential-revoked", path: can.keyPath, key: e.key, before: http.StatusOK, wanted: http.StatusUnauthorized, do: func(ctx context.Context) error {
			return a.del(ctx, "/consumers/"+can.consumer+"/key-auth/"+e.credID)
		}},
	}
	ready := make(map[int][]bool, len(probed))
	for _, n := range probed {
		ready[n] = make([]bool, len(changes))
		for j, ch := range changes {
			ready[n][j] = r.probe.status(ctx, r.c.Nodes[n].Proxy, ch.path, ch.key) == ch.before
		}
	}
	select {
	case <-time.After(time.Duration(rng.Float64() * float64(r.freq))):
	case <-ctx.Done():
		return nil
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(changes))
	for j, ch := range changes {
		wg.Go(func() {
			if err := ch.do(ctx); err != nil {
				errc <- fmt.Errorf("bench --cluster: %s on %s: %w", ch.kind, a.node, err)
				return
			}
			start := time.Now()
			var pw sync.WaitGroup
			for _, n := range probed {
				pw.Go(func() {
					if !ready[n][j] {
						r.record(n, ch.kind, 0, false)
						return
					}
					w, ok := r.probe.until(ctx, r.c.Nodes[n].Proxy, ch.path, ch.key, ch.wanted, start, r.opts.ProbeTimeout)
					if ctx.Err() == nil {
						r.record(n, ch.kind, w, ok)
					}
				})
			}
			pw.Wait()
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func (r *run) record(node int, kind string, w time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.samples[node][kind] = append(r.samples[node][kind], float64(w)/1e6)
	} else {
		r.missed[node][kind]++
	}
}

// roundSummary is the progress line: every node's p50 and misses so far.
func (r *run) roundSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for i, n := range r.c.Nodes {
		var all []float64
		missed := 0
		for _, k := range kinds {
			all = append(all, r.samples[i][k]...)
			missed += r.missed[i][k]
		}
		if len(all)+missed == 0 {
			continue
		}
		w := windowOf(sortedCopy(all), missed)
		parts = append(parts, fmt.Sprintf("%s p50 %.0f ms max %.0f ms (%d, %d missed)", n.Name, w.P50, w.Max, w.Samples, w.Missed))
	}
	return strings.Join(parts, "; ")
}

// scrapeAll scrapes every node with a metrics URL (nil entries for the
// others and for failures, which are noted on the node).
func (r *run) scrapeAll(ctx context.Context) []scrape.Samples {
	out := make([]scrape.Samples, len(r.c.Nodes))
	for i := range r.c.Nodes {
		n := &r.c.Nodes[i]
		if n.Metrics == "" {
			n.InsideNote = "no metrics URL in the cluster file: only the probed windows stand"
			continue
		}
		s, err := scrapeMetrics(ctx, r.client, n.Metrics)
		if err != nil {
			n.InsideNote = "metrics not readable: " + err.Error()
			continue
		}
		out[i] = s
	}
	return out
}

// insideOnly reads the nodes' metrics over a short interval when nothing
// can be probed, so that the report still shows what the nodes say.
func (r *run) insideOnly(ctx context.Context) {
	before := r.scrapeAll(ctx)
	t0 := time.Now()
	select {
	case <-time.After(min(r.freq*2, 10*time.Second)):
	case <-ctx.Done():
	}
	after := r.scrapeAll(ctx)
	for i := range r.c.Nodes {
		if before[i] != nil && after[i] != nil {
			r.c.Nodes[i].Inside, r.c.Nodes[i].InsideNote = inside(before[i], after[i], time.Since(t0), report.Window{}, nil, 0)
		}
	}
}

// summarize turns the samples into the report: per change kind over the
// reading nodes, per node beside its own metrics, the lagging node, the
// consistency row and the recommendation.
func (r *run) summarize(before, after []scrape.Samples, elapsed time.Duration, writer int) {
	c := r.c
	var all []float64
	allMissed := 0
	byKind := map[string][]float64{}
	missedKind := map[string]int{}
	var lagBefore, lagAfter []scrape.Bucket
	rows, rowNodes := 0.0, 0
	slack := r.opts.ProbeInterval + 20*time.Millisecond
	for i := range c.Nodes {
		n := &c.Nodes[i]
		var nodeAll []float64
		missed := 0
		for _, k := range kinds {
			nodeAll = append(nodeAll, r.samples[i][k]...)
			missed += r.missed[i][k]
			if i != writer {
				byKind[k] = append(byKind[k], r.samples[i][k]...)
				missedKind[k] += r.missed[i][k]
			}
		}
		n.WindowsMS = sortedCopy(nodeAll)
		n.Window = windowOf(n.WindowsMS, missed)
		if i != writer {
			all = append(all, nodeAll...)
			allMissed += missed
		}
		if before[i] != nil && after[i] != nil {
			n.Inside, n.InsideNote = inside(before[i], after[i], elapsed, n.Window, n.WindowsMS, slack)
			if i == writer && n.Inside != nil && n.Inside.LagEvents == 0 {
				n.InsideNote = "" // the writer applies its own changes at once, not through events
			}
			if n.Inside != nil && i != writer {
				lagBefore = scrape.Add(lagBefore, before[i].Histogram(lagSeries))
				lagAfter = scrape.Add(lagAfter, after[i].Histogram(lagSeries))
				rows += n.Inside.RowsPerS
				rowNodes++
			}
		}
	}
	for _, k := range kinds {
		if len(byKind[k])+missedKind[k] > 0 {
			c.ByChange[k] = windowOf(sortedCopy(byKind[k]), missedKind[k])
		}
	}
	c.All = windowOf(sortedCopy(all), allMissed)
	r.markLagging(writer)

	row := report.Consistency{DBUpdateFrequencyS: r.freq.Seconds(), Push: r.allPush(), WindowMS: c.All.Latency,
		Samples: c.All.Samples, Missed: c.All.Missed, ByChange: map[string]report.Latency{}, Windows: sortedCopy(all)}
	for k, w := range c.ByChange {
		row.ByChange[k] = w.Latency
	}
	if lag := scrape.Sub(lagAfter, lagBefore); len(lag) > 0 {
		ms := func(q float64) float64 { return finite(scrape.Quantile(lag, q) * 1000) }
		row.NodeLagMS = report.Latency{P50: ms(0.5), P99: ms(0.99), Max: ms(1)}
	}
	rowsPerS := -1.0
	if rowNodes > 0 {
		rowsPerS = rows / float64(rowNodes)
		row.RowsPerSecPerNode = rowsPerS
		row.PollsPerSecPerNode = 1 / r.freq.Seconds()
	}
	r.res.Consistency = []report.Consistency{row}
	if c.All.Samples > 0 {
		push := r.allPush()
		c.Budgets = recommend(pollModel{freqS: r.freq.Seconds(), push: push, pushSupported: r.pushSupported(),
			window: c.All, rowsPerS: rowsPerS})
	}
	r.logf("windows over the reading nodes: p50 %.0f p99 %.0f max %.0f ms, %d samples, %d missed", c.All.P50, c.All.P99, c.All.Max, c.All.Samples, c.All.Missed)
}

// markLagging flags the reading nodes that stand out: a tenth or more of
// their changes missed, or a median window over twice the median of the
// other readers' medians (plus a probe interval and 20 ms).
func (r *run) markLagging(writer int) {
	c := r.c
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if i == writer || n.Lagging || n.Window.Samples+n.Window.Missed == 0 {
			continue
		}
		if total := n.Window.Samples + n.Window.Missed; n.Window.Missed*10 >= total {
			n.Lagging, n.LagNote = true, fmt.Sprintf("%d of %d changes unseen after %gs", n.Window.Missed, total, c.ProbeTimeoutS)
			continue
		}
		var others []float64
		for j := range c.Nodes {
			if j != i && j != writer && c.Nodes[j].Window.Samples > 0 {
				others = append(others, c.Nodes[j].Window.P50)
			}
		}
		if len(others) == 0 {
			continue
		}
		slices.Sort(others)
		med := others[len(others)/2]
		if limit := 2*med + c.ProbeIntervalMS + 20; n.Window.P50 > limit {
			n.Lagging, n.LagNote = true, fmt.Sprintf("p50 %.0f ms against %.0f ms on the other nodes", n.Window.P50, med)
		}
	}
}

func (r *run) allPush() bool {
	for _, n := range r.c.Nodes {
		if n.Push == nil || !*n.Push || (n.Database != "postgres" && n.Database != "") {
			return false
		}
	}
	return true
}

func (r *run) pushSupported() bool {
	for _, n := range r.c.Nodes {
		if n.Push != nil {
			return true
		}
	}
	return false
}

// DefaultOut is the report directory when none is given.
func DefaultOut() string {
	return filepath.Join("bench", "results", "cluster-"+time.Now().Format("20060102-150405"))
}
