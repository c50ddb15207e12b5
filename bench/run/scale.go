package run

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/gateway/store"
)

// The scale run's settings.
const (
	// scaleFrequency is the nodes' db_update_frequency: a route change
	// waits for the other node's next poll (SQLite), so the wall window is
	// that wait plus the apply.
	scaleFrequency = 0.25
	// scaleReadyLimit bounds a node's start: migrations, then the full
	// build of the route table.
	scaleReadyLimit = 15 * time.Minute
	// cacheBytesPerConsumer sizes mem_cache_size: a credential and its
	// consumer take about 420 bytes in freecache (5,000 consumers in
	// mem_cache_size=2m evicted 929 of their 10,000 entries); 560 leaves a
	// third more for freecache's 256 segments filling unevenly, which at
	// the profile's 1M consumers (3,900 per segment) differ by a few per
	// cent. Small runs get the 128m floor.
	cacheBytesPerConsumer = 560
	// applyHist is the histogram of incremental snapshot applies; the
	// scale profile falls back to rebuildHist where a node has none.
	applyHist   = "sluice_snapshot_apply_duration_seconds"
	gcPauseHist = "sluice_gc_pauses_seconds"
)

// linearAdminRatio is the most the per-route cost of the last tenth of
// the Admin API's creations may exceed the first tenth's for creation to
// count as linear (see scaleNotes).
const linearAdminRatio = 2.0

// memCacheSize is the mem_cache_size for the credentials of consumers
// consumers and the consumers themselves: at least the node default,
// 128 MiB.
func memCacheSize(consumers int) string {
	mib := max(128, (consumers*cacheBytesPerConsumer+(1<<20)-1)>>20)
	return strconv.Itoa(mib) + "m"
}

// scale runs the scale profile: the dataset seeded through the datastore,
// two nodes started on it, and what that size costs them.
func (b *bench) scale(ctx context.Context) (*report.Scale, error) {
	p := b.opts.Profile
	dir := filepath.Join(b.opts.Out, "scale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	env, schema := b.scaleEnv(dir)
	mem := p.ScaleMemCacheSize
	if mem == "" {
		mem = memCacheSize(p.Consumers)
	}
	for _, kv := range b.opts.NodeEnv { // --node-env has the last word
		if v, ok := strings.CutPrefix(kv, "SLUICE_MEM_CACHE_SIZE="); ok {
			mem = v
		}
	}
	sc := &report.Scale{Routes: p.ScaleRoutes, Consumers: p.Consumers, Database: b.opts.Database, PGSchema: schema, CacheBackend: "freecache",
		MemCacheSize: mem, DBUpdateFrequencyS: scaleFrequency, Push: b.opts.Database == "postgres"}
	st, err := b.opts.OpenStore(ctx, env)
	if err != nil {
		return sc, fmt.Errorf("bench: scale: %w", err)
	}
	defer b.dropScale(st)
	d := newDataset(p.ScaleRoutes, p.Consumers)
	workers := 1 // SQLite has one writer
	if b.opts.Database != "sqlite" {
		workers = 4
	}
	b.logf("scale: seeding %d routes and %d consumers with a key-auth credential each through the datastore (%s)", d.routes, d.consumers, b.opts.Database)
	if sc.Seed, err = b.seed(ctx, st, d, workers); err != nil {
		return sc, err
	}
	if err := b.measureMatch(ctx, st, d, sc); err != nil {
		return sc, err
	}
	nodeEnv := slices.Concat(env, []string{"SLUICE_MEM_CACHE_SIZE=" + mem, "SLUICE_CACHE_BACKEND=" + sc.CacheBackend})
	if err := b.scaleCluster(ctx, d, sc, nodeEnv); err != nil {
		return sc, err
	}
	if ctx.Err() == nil && p.StormPhase > 0 {
		b.logf("scale: the storm phase on the scale dataset")
		s, err := b.stormOn(ctx, stormSite{dir: filepath.Join(b.opts.Out, "scale-storm"), key: d.key(0), readyLimit: scaleReadyLimit,
			env: nodeEnv})
		sc.Storm = s
		if s != nil {
			sc.StormRatioOneP = s.Ratio()
		}
		if err != nil {
			return sc, err
		}
	}
	if ctx.Err() == nil && p.ScaleAdminRoutes > 0 {
		if sc.CreationViaAdmin, err = b.adminCreation(ctx, p.ScaleAdminRoutes, p.ScaleAdminBudget); err != nil {
			return sc, err
		}
	}
	return sc, ctx.Err()
}

// scaleEnv is the datastore the scale run uses, for the bench's store
// and every node: a SQLite file in dir, or a PostgreSQL schema of its own
// (named in schema), emptied at the end.
func (b *bench) scaleEnv(dir string) (env []string, schema string) {
	env = []string{"SLUICE_DATABASE=" + b.opts.Database}
	switch b.opts.Database {
	case "sqlite":
		env = append(env, "SLUICE_SQLITE_PATH="+filepath.Join(dir, "sluice.db"))
	case "postgres":
		schema = "sluice_scale_" + b.prefix
		env = append(env, "SLUICE_PG_SCHEMA="+schema)
	}
	return env, schema
}

// dropScale closes st, first dropping the tables of a PostgreSQL schema
// of the run's own (a SQLite file stays in the report directory).
func (b *bench) dropScale(st store.Store) {
	if m, ok := st.(store.Migrator); ok && b.opts.Database == "postgres" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.Reset(ctx); err != nil {
			b.logf("scale: could not drop the run's PostgreSQL tables: %v", err)
		}
	}
	_ = st.Close()
}

// scaleCluster starts two nodes on the seeded datastore one after the
// other (each one's cold start), makes the route changes on node A, looks
// every credential up through each node, runs the steady phase and reads
// memory and GC pauses.
func (b *bench) scaleCluster(ctx context.Context, d *dataset, sc *report.Scale, env []string) error {
	p := b.opts.Profile
	freq := strconv.FormatFloat(scaleFrequency, 'g', -1, 64)
	hc := &harness.Cluster{}
	// The two nodes share the machine's CPUs: each gets its half as Ps
	// (--node-env may say otherwise). With more Ps than CPUs, a GC's
	// stop-the-world waits for the threads the kernel has parked to run
	// the other node and the load: 2 ms at p99 where the pause's own work
	// takes under 0.05 ms (bench/RESULTS.md, "Scale").
	procs := max(1, runtime.NumCPU()/2)
	sc.NodeGOMAXPROCS = procs
	for _, kv := range b.opts.NodeEnv {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			sc.NodeGOMAXPROCS, _ = strconv.Atoi(v)
		}
	}
	opts := harness.Options{Binary: b.opts.Binary, Nodes: 1, Dir: filepath.Join(b.opts.Out, "scale"), Args: b.args(),
		ReadyTimeout: scaleReadyLimit, Env: b.nodeEnv(append(env, "SLUICE_DB_UPDATE_FREQUENCY="+freq,
			"GOMAXPROCS="+strconv.Itoa(procs))...)}
	defer func() { hc.Stop() }()
	defer probeClient.CloseIdleConnections()
	for i := range 2 {
		t0 := time.Now()
		var err error
		if i == 0 {
			var c *harness.Cluster
			if c, err = harness.Start(ctx, opts); err == nil {
				hc = c
			}
		} else {
			err = hc.Add(ctx, 1)
		}
		if err != nil {
			return fmt.Errorf("bench: scale: %w", err)
		}
		n := hc.Nodes[i]
		ready := time.Since(t0)
		if _, ok := probe(ctx, n, d.routePath(0), d.key(0), http.StatusOK, t0, scaleReadyLimit, 5*time.Millisecond); !ok {
			return fmt.Errorf("bench: scale: %s did not serve %s within %v", n.Name, d.routePath(0), scaleReadyLimit)
		}
		cold := time.Since(t0).Seconds()
		sc.Nodes = append(sc.Nodes, report.ScaleNode{Name: n.Name, ColdStartS: cold})
		b.logf("  %s: ready after %.2f s, first proxied 200 after %.2f s (cold start)", n.Name, ready.Seconds(), cold)
	}
	sc.ColdStartS = sc.Nodes[0].ColdStartS
	if err := b.routeChanges(ctx, hc.Nodes, d, sc); err != nil {
		return err
	}
	before, err := scrapeAll(ctx, hc.Nodes)
	if err != nil {
		return err
	}
	if err := b.warmKeys(ctx, hc.Nodes, d, sc); err != nil {
		return err
	}
	if p.ScaleSteady > 0 {
		b.steady(ctx, hc.Nodes, d, p.ScaleSteady, p.ScaleSteadyRate)
	}
	after, err := scrapeAll(ctx, hc.Nodes)
	if err != nil {
		return err
	}
	b.readMemory(hc.Nodes, before, after, sc)
	return nil
}

// scaleNotes states the acceptance targets against what the
// scale run measured, in words (nil s: nothing measured).
func scaleNotes(s *report.Scale) []string {
	if s == nil || len(s.Nodes) == 0 {
		return nil
	}
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	rc := s.RouteChangeApplyMS
	notes := []string{
		fmt.Sprintf("route change target (applied on every node in p99 <= 5 ms after its event arrives, no full rebuild) %s at %d routes: %s p99 %.2f ms over %.0f applies, %.0f full rebuilds",
			met(rc.NodeMetric == applyHist && rc.NodeP99 <= 5 && rc.FullRebuilds == 0), s.Routes, rc.NodeMetric, rc.NodeP99, rc.NodeCount, rc.FullRebuilds),
		fmt.Sprintf("match target (<= 1 µs) %s at %d routes: %.0f ns of CPU per Match (%.0f ns wall)", met(s.MatchNS <= 1000), s.Routes, s.MatchNS, s.MatchWallNS),
		fmt.Sprintf("memory target (RSS <= 1 GiB per node with the credentials cached) %s with %d credentials: %.0f MiB (heap in use %.0f MiB)",
			met(s.RSSBytes1MCredentials > 0 && s.RSSBytes1MCredentials <= 1<<30), s.Consumers, float64(s.RSSBytes1MCredentials)/(1<<20), float64(s.HeapInuseBytes)/(1<<20)),
		fmt.Sprintf("GC target (pause p99 <= 1 ms) %s: %.3f ms", met(s.GCPauseP99MS <= 1), s.GCPauseP99MS),
	}
	if st := s.Storm; st != nil && st.Calm.Requests > 0 {
		notes = append(notes, fmt.Sprintf("storm target (p99 <= 2x calm with one P) on the scale dataset %s: %.2fx, node B GOMAXPROCS=%d, %d errors",
			met(s.StormRatioOneP <= 2 && st.Calm.Errors+st.Storm.Errors == 0), s.StormRatioOneP, st.NodeBGOMAXPROCS, st.Calm.Errors+st.Storm.Errors))
	}
	if a := s.CreationViaAdmin; a != nil && len(a.Chunks) > 1 {
		// Creation that rebuilt the table per write is quadratic: over ten
		// equal chunks the last costs 19 times the first per route (2.7 to
		// 41.6 ms at 10,000 routes before the incremental snapshots, 15x).
		// Linear creation keeps the ratio near 1; the datastore's B-trees
		// growing with the table add their logarithm (1.1-1.6 measured at
		// 100,000 routes on SQLite).
		notes = append(notes, fmt.Sprintf("Admin API creation linear (last chunk / first chunk per route <= %g; quadratic gives 19) %s: %.2f over %d routes in %.0f s",
			linearAdminRatio, met(a.LastOverFirst <= linearAdminRatio), a.LastOverFirst, a.Created, a.Seconds))
	}
	return notes
}
