// Package run is `sluice bench`: it starts a built-in upstream, real node
// processes (bench/harness) and optionally nginx, measures throughput per
// cache backend and the consistency window per db_update_frequency/push
// setting, and writes the report (bench/report).
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/stats"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Profile sizes a run.
type Profile struct {
	Name string
	// Consumers get one key-auth credential each; requests pick them by
	// Zipf, plus UnknownShare of requests with keys that do not exist.
	Consumers    int
	UnknownShare float64
	Conns        int
	Warmup       time.Duration
	Closed       time.Duration
	Open         time.Duration
	OpenRate     int
	Backends     []string
	Frequencies  []float64
	// Changes is the number of changes per setting of the consistency
	// sweep, each probed on one node: the setting's windows. Their write
	// times are drawn uniformly over ChangeSpan, rounded up to whole poll
	// intervals, so changes whose windows overlap run concurrently.
	Changes    int
	ChangeSpan time.Duration
	// SettingRPS is the closed-loop run on one node per setting.
	SettingRPS time.Duration
	// StormPhase > 0 runs the invalidation storm: node B at StormRate
	// requests/s for StormPhase calm, then StormPhase while node C (the
	// control, on SQLite) and StormPhase while node A takes StormChanges
	// changes per second, StormRounds times (at least once); each kind's
	// requests are pooled.
	StormPhase                           time.Duration
	StormRate, StormChanges, StormRounds int
	// SoakDuration > 0 makes the run a soak and nothing else: open-loop
	// traffic at SoakRate (0: half the capacity measured with Conns
	// connections over Warmup + Closed) through SoakNodes nodes (0:
	// Options.Nodes) for SoakDuration, with key-auth and rate-limiting
	// (SoakRateLimit requests/s per consumer), a configuration change on
	// node A every SoakChangeEvery, sampled every SoakInterval.
	SoakDuration, SoakInterval, SoakChangeEvery time.Duration
	SoakRate, SoakNodes, SoakRateLimit          int
	// SoakMaxRate bounds the measured half capacity (0: no bound). The
	// closed loop overstates what 2 shared cores sustain in vegeta's open
	// loop: at half of a measured 8,151 rps (4,075/s), with another
	// engineer's load on the machine, the nodes queued for seconds with
	// 10,000 goroutines each and the run measured only the overload.
	SoakMaxRate int
	// ScaleRoutes > 0 makes the run the scale profile and nothing else:
	// ScaleRoutes routes and Consumers key-auth consumers seeded through
	// the datastore, two nodes on them, ScaleRouteChanges route changes,
	// every credential looked up through each node, a steady phase of
	// ScaleSteady at ScaleSteadyRate requests/s per node, the storm phase
	// (StormPhase > 0) on the same dataset, and ScaleAdminRoutes routes
	// created through the Admin API on a fresh SQLite node, for at most
	// ScaleAdminBudget. ScaleMemCacheSize is the nodes' mem_cache_size
	// ("": sized for the consumers).
	ScaleRoutes, ScaleRouteChanges, ScaleAdminRoutes, ScaleSteadyRate int
	ScaleSteady, ScaleAdminBudget                                     time.Duration
	ScaleMemCacheSize                                                 string
}

// Profiles are the built-in profiles by name.
var Profiles = map[string]Profile{
	"smoke": {Name: "smoke", Consumers: 2000, UnknownShare: 0.05, Conns: 32,
		Warmup: 500 * time.Millisecond, Closed: 2 * time.Second, Open: 1500 * time.Millisecond, OpenRate: 1000,
		Backends: []string{"freecache", "otter"}, Frequencies: []float64{0.25, 1},
		Changes: 60, ChangeSpan: 4 * time.Second, SettingRPS: time.Second,
		StormPhase: 2 * time.Second, StormRate: 500, StormChanges: 200},
	"default": {Name: "default", Consumers: 20000, UnknownShare: 0.05, Conns: 50,
		Warmup: time.Second, Closed: 5 * time.Second, Open: 3 * time.Second, OpenRate: 3000,
		Backends: []string{"freecache", "otter", "ristretto", "lru"}, Frequencies: []float64{0.25, 0.5, 1, 2, 5},
		Changes: 300, ChangeSpan: 5 * time.Second, SettingRPS: 2 * time.Second,
		StormPhase: 3 * time.Second, StormRate: 1000, StormChanges: 200, StormRounds: 5},
	"full": {Name: "full", Consumers: 100000, UnknownShare: 0.05, Conns: 50,
		Warmup: 3 * time.Second, Closed: 15 * time.Second, Open: 10 * time.Second, OpenRate: 5000,
		Backends: []string{"freecache", "otter", "ristretto", "lru"}, Frequencies: []float64{0.1, 0.25, 0.5, 1, 2, 5},
		Changes: 1000, ChangeSpan: 30 * time.Second, SettingRPS: 5 * time.Second,
		StormPhase: 10 * time.Second, StormRate: 2000, StormChanges: 300, StormRounds: 3},
	"soak": {Name: "soak", Consumers: 5000, UnknownShare: 0.05, Conns: 32,
		Warmup: 2 * time.Second, Closed: 10 * time.Second,
		SoakDuration: 30 * time.Minute, SoakInterval: 10 * time.Second, SoakChangeEvery: 3 * time.Second,
		SoakNodes: 2, SoakRateLimit: 100, SoakMaxRate: 1500},
	// scale: the sizes. The Admin API creation of 100,000 routes
	// takes under two minutes on SQLite with incremental route-table
	// updates (bench/RESULTS.md, "Scale").
	"scale": {Name: "scale", Consumers: 1_000_000, ScaleRoutes: 100_000, ScaleRouteChanges: 100,
		ScaleAdminRoutes: 100_000, ScaleAdminBudget: 30 * time.Minute, ScaleSteady: 10 * time.Second, ScaleSteadyRate: 300,
		StormPhase: 5 * time.Second, StormRate: 500, StormChanges: 50},
}

// Options configures a run.
type Options struct {
	// Binary is the sluice binary the nodes run.
	Binary  string
	Profile Profile
	// Out is the report directory.
	Out string
	// Database is sqlite, postgres or cassandra; connection settings come
	// from the environment (SLUICE_PG_*, SLUICE_CASSANDRA_*) or ConfigFile.
	// "off" runs DB-less nodes, loaded with POST /config.
	Database   string
	ConfigFile string
	Nodes      int
	// NodeEnv holds KEY=VALUE pairs added to every node's environment
	// (GOMAXPROCS=2, GOGC=...), after the bench's own settings.
	NodeEnv []string
	// Skip lists phases to leave out: "throughput", "consistency", "storm".
	Skip []string
	// Progress receives one line per step.
	Progress io.Writer
	// Command is recorded in the report.
	Command string
	// OpenStore opens, with its migrations applied, the datastore a node
	// would open with env added to its environment (and ConfigFile): the
	// scale profile seeds it directly. Required by the scale profile only.
	OpenStore func(ctx context.Context, env []string) (store.Store, error)
}

// bench is one run's state.
type bench struct {
	opts     Options
	start    time.Time
	upstream string
	// prefix makes entity names unique per run, so a shared PostgreSQL or
	// Cassandra keeps working across runs.
	prefix string
}

func (b *bench) logf(format string, args ...any) {
	if b.opts.Progress != nil {
		fmt.Fprintf(b.opts.Progress, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
	}
}

// nodeEnv is the environment every node gets besides the harness's own.
func (b *bench) nodeEnv(extra ...string) []string {
	env := []string{"SLUICE_DATABASE=" + b.opts.Database, "SLUICE_LOG_LEVEL=warn"}
	return append(append(env, extra...), b.opts.NodeEnv...)
}

// Run runs the benchmark and writes its report into opts.Out.
func Run(ctx context.Context, opts Options) (*report.Results, error) {
	if opts.Binary == "" {
		return nil, errors.New("bench: no sluice binary")
	}
	soak := opts.Profile.SoakDuration > 0
	scale := opts.Profile.ScaleRoutes > 0
	switch {
	case scale && opts.OpenStore == nil:
		return nil, errors.New("bench: the scale profile needs Options.OpenStore")
	case scale && opts.Profile.Consumers < 1:
		return nil, errors.New("bench: the scale profile needs at least 1 consumer")
	case scale && opts.Database != "sqlite" && opts.Database != "postgres":
		return nil, fmt.Errorf("bench: --profile scale --database %q: want sqlite or postgres", opts.Database)
	case soak && (opts.Profile.SoakInterval <= 0 || opts.Profile.SoakChangeEvery <= 0 || opts.Profile.Consumers < 2):
		return nil, errors.New("bench: soak profile needs SoakInterval, SoakChangeEvery and at least 2 consumers")
	case soak && opts.Profile.SoakNodes == 0 && opts.Nodes < 1:
		return nil, fmt.Errorf("bench: --nodes %d: the soak needs at least 1", opts.Nodes)
	case !soak && !scale && opts.Nodes < 2:
		return nil, fmt.Errorf("bench: --nodes %d: the consistency phase needs at least 2", opts.Nodes)
	}
	switch opts.Database {
	case "sqlite", "postgres", "cassandra":
	case "off":
		if soak {
			return nil, errors.New("bench: --database off: the soak changes entities through the Admin API, " +
				"which a DB-less node refuses; run the other profiles on DB-less nodes")
		}
	default:
		return nil, fmt.Errorf("bench: --database %q: want sqlite, postgres, cassandra or off", opts.Database)
	}
	for _, s := range opts.Skip {
		if !slices.Contains(phases, s) {
			return nil, fmt.Errorf("bench: --skip %q: want %s (comma-separated)", s, strings.Join(phases, ", "))
		}
	}
	if opts.ConfigFile != "" {
		abs, err := filepath.Abs(opts.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("bench: -c: %w", err)
		}
		opts.ConfigFile = abs
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("bench: --out: %w", err)
	}
	opts.Out = out
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: --out: %w", err)
	}
	b := &bench{opts: opts, start: time.Now(), prefix: fmt.Sprintf("b%x", time.Now().Unix()%0xfffff)}
	res := &report.Results{
		Schema: report.SchemaVersion, StartedAt: b.start, Profile: opts.Profile.Name, Database: opts.Database,
		Nodes: opts.Nodes, Consumers: opts.Profile.Consumers, Machine: machine(), Command: opts.Command,
	}
	stopUp, err := b.startUpstream()
	if err != nil {
		return nil, err
	}
	defer stopUp()
	b.logf("upstream on %s; report in %s", b.upstream, opts.Out)

	var errs []error
	if scale {
		res.Nodes = 2
		s, err := b.scale(ctx)
		res.Scale = s
		errs = append(errs, err)
		res.Notes = append(res.Notes, scaleNotes(s)...)
	}
	if soak {
		res.Nodes = opts.Nodes
		if opts.Profile.SoakNodes > 0 {
			res.Nodes = opts.Profile.SoakNodes
		}
		s, err := b.soak(ctx)
		res.Soak = s
		errs = append(errs, err)
	}
	other := !soak && !scale
	if other && !skip(opts.Skip, "throughput") {
		rows, notes, err := b.throughput(ctx)
		res.Throughput, res.Notes = rows, append(res.Notes, notes...)
		errs = append(errs, err)
	}
	switch {
	case !other || ctx.Err() != nil || skip(opts.Skip, "consistency"):
	case b.dbless():
		row, err := b.configConsistency(ctx)
		res.Consistency = []report.Consistency{row}
		errs = append(errs, err)
	default:
		rows, err := b.consistency(ctx)
		res.Consistency = rows
		errs = append(errs, err)
	}
	if b.dbless() && opts.Profile.StormPhase > 0 && !skip(opts.Skip, "storm") {
		res.Notes = append(res.Notes, "storm: not run on DB-less nodes (its changes are entity writes on node A)")
	} else if other && ctx.Err() == nil && opts.Profile.StormPhase > 0 && !skip(opts.Skip, "storm") {
		s, err := b.storm(ctx)
		res.Storm = s
		errs = append(errs, err)
	}
	for _, budget := range []time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second} {
		if slices.ContainsFunc(res.Consistency, func(c report.Consistency) bool { return c.Via == "" }) {
			res.Recommendations = append(res.Recommendations, report.Recommend(res.Consistency, budget))
		}
	}
	res.Notes = append(res.Notes, targetNotes(res)...)
	res.DurationS = time.Since(b.start).Seconds()
	if err := report.Write(opts.Out, res); err != nil {
		errs = append(errs, err)
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("bench: interrupted: %w", ctx.Err()))
	}
	return res, errors.Join(errs...)
}

// phases are the phases --skip can leave out.
var phases = []string{"throughput", "consistency", "storm"}

func skip(list []string, phase string) bool { return slices.Contains(list, phase) }

// upstreamBody is the built-in upstream's answer: a tiny JSON body, as
// perf.md's upstream.
var upstreamBody = []byte(`{"ok":true,"n":1}` + "\n")

func (b *bench) startUpstream() (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: upstream: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(upstreamBody)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.upstream = "http://" + ln.Addr().String()
	return func() { _ = srv.Close() }, nil
}

// Machine describes the machine the bench runs on, for the report.
func Machine() report.Machine { return machine() }

func machine() report.Machine {
	m := report.Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += " " + strings.TrimSpace(string(data))
	}
	return m
}

// bareHTTPUtilMicros is bare httputil.ReverseProxy's CPU per request on
// the reference 2-vCPU machine, pinned (perf.md §2b): the comparison used
// only when the run could not measure bench/bareproxy itself.
const bareHTTPUtilMicros = 27.8

// judge says whether the p99 of w is within limit ms, by its 95 %
// order-statistic bounds: met when the upper bound is, NOT met when the
// lower bound is beyond it, else undecided.
func judge(w report.Summary, limit float64) string {
	switch {
	case w.P99Upper != nil && *w.P99Upper <= limit:
		return fmt.Sprintf("met (p99 <= %.1f ms at 95 %% from %d windows)", *w.P99Upper, w.N)
	case w.P99Lower != nil && *w.P99Lower > limit:
		return fmt.Sprintf("NOT met (p99 >= %.1f ms at 95 %% from %d windows)", *w.P99Lower, w.N)
	case w.P99Upper == nil:
		return fmt.Sprintf("not judged (%d windows cannot bound the p99 from above, %d can; max %.1f ms)", w.N, stats.MinSamples(0.99, report.Confidence), w.Max)
	}
	return fmt.Sprintf("undecided (the p99 lies between %.1f and %.1f ms at 95 %% from %d windows)", *w.P99Lower, *w.P99Upper, w.N)
}

// targetNotes states, in words, which of the targets the run met.
func targetNotes(r *report.Results) []string {
	var notes []string
	for _, c := range r.Consistency {
		if c.Window.N == 0 || c.Via != "" {
			continue
		}
		if c.Push {
			notes = append(notes, fmt.Sprintf("push target p99 <= 50 ms at db_update_frequency=%gs: %s", c.DBUpdateFrequencyS, judge(c.Window, 50)))
			continue
		}
		limit := c.DBUpdateFrequencyS*1000 + 50
		notes = append(notes, fmt.Sprintf("poll target p99 <= db_update_frequency + 50 ms (%.0f ms) at %gs: %s; %d missed", limit, c.DBUpdateFrequencyS, judge(c.Window, limit), c.Missed))
	}
	if s := r.Storm; s != nil && s.Calm.Requests > 0 && s.Storm.Requests > 0 {
		v := "met"
		if s.Ratio() > 2 || s.Calm.Errors+s.Storm.Errors > 0 {
			v = "NOT met"
		}
		where := "unpinned, so the storm's writes also compete for node B's CPU"
		if s.Pinning != "" {
			where = s.Pinning
		}
		note := fmt.Sprintf("storm target (node B's p99 within 2x calm, no errors, while node A takes %.0f changes/s) %s: calm p99 %.2f ms, storm p99 %.2f ms = %.2fx, %d errors (%s; node B GOMAXPROCS=%d)",
			s.ChangesPerSec, v, s.Calm.Latency.P99, s.Storm.Latency.P99, s.Ratio(), s.Calm.Errors+s.Storm.Errors, where, s.NodeBGOMAXPROCS)
		if c := s.Control; c != nil && c.Latency.P99 > 0 {
			note += fmt.Sprintf("; control (the same writes on node C, which node B does not hear): p99 %.2f ms = %.2fx calm, so node B's own work makes %.2fx of the control",
				c.Latency.P99, s.MachineRatio(), s.ControlRatio())
			if v != "met" && s.MachineRatio() > 1.5 {
				note += ": most of the storm's cost here is the machine's (the writes' CPU, disk and neighbours reaching node B's CPU), not node B's"
			}
		}
		notes = append(notes, note)
	}
	bare := 0.0
	for _, t := range r.Throughput {
		if t.Target == bareTarget {
			bare = t.CPUMicrosPerRequest
		}
	}
	for _, t := range r.Throughput {
		if t.Target != "gateway" || t.CPUMicrosPerRequest <= 0 {
			continue
		}
		if bare > 0 {
			v := "met"
			if t.CPUMicrosPerRequest > bare {
				v = "NOT met"
			}
			notes = append(notes, fmt.Sprintf("parity target (gateway with key-auth + rate-limiting + metrics <= bare httputil.ReverseProxy) %s for gateway/%s: %.1f CPU µs/request = %.2fx the bare Go proxy measured in this run (%.1f µs/request, no plugins, no datastore)",
				v, t.CacheBackend, t.CPUMicrosPerRequest, t.CPUMicrosPerRequest/bare, bare))
			continue
		}
		notes = append(notes, fmt.Sprintf("gateway/%s with key-auth + rate-limiting + metrics: %.1f CPU µs/request = %.2fx bare httputil.ReverseProxy (%.1f µs pinned on perf.md's machine, §2b; not measured in this run)",
			t.CacheBackend, t.CPUMicrosPerRequest, t.CPUMicrosPerRequest/bareHTTPUtilMicros, bareHTTPUtilMicros))
	}
	return notes
}
