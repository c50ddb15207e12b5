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

// parenthesized returns " (s)", or "" for an empty s.
func parenthesized(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
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
		if n := &r.c.Nodes[i]; dbless(n) {
			n.Probe = "no: DB-less (database=off): its entities come from its declarative configuration, not from a datastore the canary could be written to"
			why = append(why, n.Name+": DB-less")
		}
	}
	for i := range r.c.Nodes {
		n := &r.c.Nodes[i]
		if dbless(n) {
			continue
		}
		if strings.HasPrefix(n.Probe, "GET / failed") {
			why = append(why, n.Name+": "+n.Probe)
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
		r.finishCleanup(i)
		if !refused(err) {
			return fmt.Errorf("bench --cluster: canary setup on %s: %w", n.Name, err)
		}
		n.Probe = "refused writes: the Admin API refused the canary write (" + err.Error() + ")"
		why = append(why, fmt.Sprintf("%s: Admin API refused writes (%v)", n.Name, err))
		r.logf("%s: consistency cannot be probed from here: %v", n.Name, err)
	}
	if writer < 0 {
		r.c.NotProbed = "no node's Admin API took the canary writes: " + strings.Join(why, "; ") + ". Discovery, the nodes' own metrics and the load (when asked) are still reported."
		for i := range r.c.Nodes {
			if n := &r.c.Nodes[i]; !dbless(n) {
				n.Probe = "no: consistency cannot be probed without a node taking the canary writes" + parenthesized(n.Probe)
			}
		}
		r.insideOnly(ctx)
		return nil
	}
	defer r.finishCleanup(writer)
	r.c.Writer = r.c.Nodes[writer].Name
	r.c.Nodes[writer].Writer = true
	return r.probeRounds(ctx, can, writer)
}

// finishCleanup deletes this run's canary entities even when ctx was
// cancelled (Ctrl-C), with a minute of its own, through node i's Admin
// API or, when that fails (the writer died), through the next node's
// that is not DB-less.
func (r *run) finishCleanup(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k := range r.admins {
		j := (i + k) % len(r.admins)
		if dbless(&r.c.Nodes[j]) {
			continue
		}
		a := r.admins[j]
		d, left, err := cleanup(ctx, a, runTagPrefix+r.id)
		r.c.Cleanup.Deleted += d
		r.c.Cleanup.Left = left
		r.logf("canary cleanup through %s: %d deleted, %d left%s", a.node, d, left, errSuffix(err))
		if err == nil || ctx.Err() != nil {
			return
		}
		r.c.Cleanup.Errors = append(r.c.Cleanup.Errors, err.Error())
	}
}

func errSuffix(err error) string {
	if err != nil {
		return ": " + err.Error()
	}
	return ""
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

// DefaultOut is the report directory when none is given.
func DefaultOut() string {
	return filepath.Join("bench", "results", "cluster-"+time.Now().Format("20060102-150405"))
}
