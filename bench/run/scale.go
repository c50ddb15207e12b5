package run

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/router"
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
	// mem_cache_size=2m evicted 929 of their 10,000 entries); 800 leaves
	// room for freecache's 256 segments filling unevenly.
	cacheBytesPerConsumer = 800
	// apply metrics: the incremental apply's histogram when the node has
	// it (issue 13, incremental snapshots), else the full rebuild's.
	applyHist   = "sluice_snapshot_apply_duration_seconds"
	gcPauseHist = "sluice_gc_pauses_seconds"
)

// memCacheSize is the mem_cache_size for consumers credentials and their
// consumers: at least the node default, 128 MiB.
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
	env := b.scaleEnv(dir)
	mem := p.ScaleMemCacheSize
	if mem == "" {
		mem = memCacheSize(p.Consumers)
	}
	for _, kv := range b.opts.NodeEnv { // --node-env has the last word
		if v, ok := strings.CutPrefix(kv, "SLUICE_MEM_CACHE_SIZE="); ok {
			mem = v
		}
	}
	sc := &report.Scale{Routes: p.ScaleRoutes, Consumers: p.Consumers, Database: b.opts.Database, CacheBackend: "freecache",
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
	if err := b.scaleCluster(ctx, st, d, sc, append(env, "SLUICE_MEM_CACHE_SIZE="+mem, "SLUICE_CACHE_BACKEND="+sc.CacheBackend)); err != nil {
		return sc, err
	}
	if ctx.Err() == nil && p.StormPhase > 0 {
		b.logf("scale: the storm phase on the scale dataset")
		s, err := b.stormOn(ctx, stormSite{dir: filepath.Join(b.opts.Out, "scale-storm"), key: d.key(0), readyLimit: scaleReadyLimit,
			env: append(env, "SLUICE_MEM_CACHE_SIZE="+mem)})
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
// and every node: a SQLite file in dir, or a PostgreSQL schema of its own,
// emptied at the end.
func (b *bench) scaleEnv(dir string) []string {
	env := []string{"SLUICE_DATABASE=" + b.opts.Database}
	switch b.opts.Database {
	case "sqlite":
		env = append(env, "SLUICE_SQLITE_PATH="+filepath.Join(dir, "sluice.db"))
	case "postgres":
		env = append(env, "SLUICE_PG_SCHEMA=sluice_scale_"+b.prefix)
	}
	return env
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

// measureMatch loads the routes and services from the datastore as a node
// does, builds the router and times Match over request paths: 90 % hits
// spread over the whole table, 10 % misses. The loop runs on a locked OS
// thread; wall time and that thread's CPU time (getrusage RUSAGE_THREAD)
// are divided by the matches.
func (b *bench) measureMatch(ctx context.Context, st store.Store, d *dataset, sc *report.Scale) error {
	t := time.Now()
	services := map[string]*entity.Service{}
	var targets []router.Target
	err := list(ctx, st, entity.KindService, func(e entity.Entity) { services[e.PrimaryKey()] = e.(*entity.Service) })
	if err == nil {
		err = list(ctx, st, entity.KindRoute, func(e entity.Entity) {
			r := e.(*entity.Route)
			tg := router.Target{Route: r}
			if r.Service != nil {
				tg.Service = services[r.Service.ID]
			}
			targets = append(targets, tg)
		})
	}
	if err != nil {
		return fmt.Errorf("bench: scale: %w", err)
	}
	loaded := time.Since(t)
	t = time.Now()
	rt, err := router.New(targets)
	if err != nil {
		return fmt.Errorf("bench: scale: router: %w", err)
	}
	built := time.Since(t)
	rng := rand.New(rand.NewPCG(1, 2))
	paths := make([]string, 4096)
	for i := range paths {
		if i%10 == 9 {
			paths[i] = fmt.Sprintf("/miss/%d", rng.IntN(d.routes))
			continue
		}
		paths[i] = d.routePath(rng.IntN(d.routes)) + "/items"
	}
	const rounds = 250 // ~1M matches
	hits := 0
	runtime.LockOSThread()
	cpu0, w0 := procstat.Thread(), time.Now()
	for range rounds {
		for _, p := range paths {
			if _, ok := rt.Match(http.MethodGet, "localhost", p, nil); ok {
				hits++
			}
		}
	}
	wall, cpu := time.Since(w0), procstat.Thread()-cpu0
	runtime.UnlockOSThread()
	n := float64(rounds * len(paths))
	if want := rounds * (len(paths) - len(paths)/10); hits != want {
		return fmt.Errorf("bench: scale: the router matched %d of %d requests for seeded routes", hits, want)
	}
	sc.MatchNS, sc.MatchCPUNS = float64(wall)/n, float64(cpu)/n
	sc.MatchMethod = fmt.Sprintf("router.New over the %d routes read from the datastore (read %.1f s, built %.1f s) in the bench process; %.0f Match calls, 90 %% hits over the table, 10 %% misses, on one locked thread: wall and thread CPU (getrusage RUSAGE_THREAD) per call",
		rt.Len(), loaded.Seconds(), built.Seconds(), n)
	b.logf("  router over %d routes: Match %.0f ns wall, %.0f ns CPU (read %.1f s, built %.1f s)", rt.Len(), sc.MatchNS, sc.MatchCPUNS, loaded.Seconds(), built.Seconds())
	return nil
}

// list calls fn for every entity of kind, page by page.
func list(ctx context.Context, st store.Store, kind entity.Kind, fn func(entity.Entity)) error {
	q := store.ListQuery{Kind: kind, Size: 1000}
	for {
		page, err := st.List(ctx, q)
		if err != nil {
			return fmt.Errorf("cannot list %s: %w", kind, err)
		}
		for _, rec := range page.Records {
			e, err := entity.Decode(kind, rec.Data)
			if err != nil {
				return err
			}
			fn(e)
		}
		if page.Next == "" {
			return nil
		}
		q.Offset = page.Next
	}
}

// scaleCluster starts two nodes on the seeded datastore one after the
// other (each one's cold start), makes the route changes on node A, looks
// every credential up through each node, runs the steady phase and reads
// memory and GC pauses.
func (b *bench) scaleCluster(ctx context.Context, st store.Store, d *dataset, sc *report.Scale, env []string) error {
	p := b.opts.Profile
	freq := strconv.FormatFloat(scaleFrequency, 'g', -1, 64)
	hc := &harness.Cluster{}
	opts := harness.Options{Binary: b.opts.Binary, Nodes: 1, Dir: filepath.Join(b.opts.Out, "scale"), Args: b.args(),
		ReadyTimeout: scaleReadyLimit, Env: b.nodeEnv(append(env, "SLUICE_DB_UPDATE_FREQUENCY="+freq)...)}
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

// The route changes, made in turn.
const (
	changeCreate = iota
	changeUpdate
	changeDelete
)

// routeChanges makes Profile.ScaleRouteChanges route changes on node A,
// one at a time, in turn a route created, a seeded route's path changed
// and a seeded route deleted (from the end of the table; route 0, which
// the other measurements request, is never touched), and probes every
// node's proxy until it serves each.
func (b *bench) routeChanges(ctx context.Context, nodes []*harness.Node, d *dataset, sc *report.Scale) error {
	count := b.opts.Profile.ScaleRouteChanges
	if count <= 0 {
		return nil
	}
	if 2*count/3+2 >= d.routes {
		return fmt.Errorf("bench: scale: %d route changes need more than %d seeded routes", count, d.routes)
	}
	const every = 2 * time.Millisecond
	limit := time.Duration(2*scaleFrequency*float64(time.Second)) + 30*time.Second
	b.logf("scale: %d route changes on node A (create, update, delete in turn), each probed on every node every %v", count, every)
	before, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	a := nodes[0]
	perNode := make([][]float64, len(nodes))
	var windows []float64
	rc := &sc.RouteChangeApplyMS
	var made atomic.Int64
	stop := b.progress(func(time.Duration) { b.logf("  %d/%d route changes made", made.Load(), count) })
	defer stop()
	victim := d.routes - 1 // seeded routes updated or deleted, from the end
	rng := rand.New(rand.NewPCG(5, uint64(time.Now().UnixNano())))
	for i := range count {
		// A change made as soon as the last one showed would come just
		// after the other node's poll, every time: a pause drawn uniformly
		// over one poll interval makes every phase of the poll equally
		// likely.
		select {
		case <-time.After(time.Duration(rng.Float64() * scaleFrequency * float64(time.Second))):
		case <-ctx.Done():
			return ctx.Err()
		}
		made.Add(1)
		var path string
		want := http.StatusOK
		var err error
		switch i % 3 {
		case changeCreate:
			path = fmt.Sprintf("/c%d-%s", i, b.prefix)
			_, err = a.MustAdmin(ctx, http.MethodPost, "/services/"+d.service+"/routes", url.Values{"paths[]": {path}}, http.StatusCreated)
		case changeUpdate:
			path = fmt.Sprintf("/u%d-%s", i, b.prefix)
			_, err = a.MustAdmin(ctx, http.MethodPatch, "/routes/"+d.routeName(victim), url.Values{"paths[]": {path}}, http.StatusOK)
			victim--
		case changeDelete:
			path, want = d.routePath(victim), http.StatusNotFound
			_, err = a.MustAdmin(ctx, http.MethodDelete, "/routes/"+d.routeName(victim), nil, http.StatusNoContent)
			victim--
		}
		if err != nil {
			return fmt.Errorf("bench: scale: route change %d: %w", i, err)
		}
		start := time.Now()
		ws := make([]time.Duration, len(nodes))
		oks := make([]bool, len(nodes))
		var wg sync.WaitGroup
		for j, n := range nodes {
			wg.Go(func() { ws[j], oks[j] = probe(ctx, n, path, d.key(0), want, start, limit, every) })
		}
		wg.Wait()
		if slices.Contains(oks, false) {
			rc.Missed++
			continue
		}
		for j := range nodes {
			perNode[j] = append(perNode[j], float64(ws[j])/1e6)
		}
		windows = append(windows, float64(slices.Max(ws))/1e6)
	}
	stop()
	after, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	q := quantiles(windows)
	rc.P50, rc.P99, rc.Max, rc.N, rc.ProbeMS = q.p50, q.p99, q.max, len(windows), float64(every)/1e6
	rc.Method = fmt.Sprintf("%d changes made one at a time on node A's Admin API (route created, path updated, route deleted in turn), each after a pause drawn uniformly over one poll interval; window from its answer to the send of the first probe that saw the change, on the last node to show it (every node's proxy probed every %v); p99 nearest-rank", count, every)
	for j := range nodes {
		nq := quantiles(perNode[j])
		sc.Nodes[j].RouteChangeP50MS, sc.Nodes[j].RouteChangeP99MS = nq.p50, nq.p99
	}
	rc.NodeMetric = rebuildHist
	if after[0].Sum(applyHist+"_count") > 0 || after[len(after)-1].Sum(applyHist+"_count") > 0 {
		rc.NodeMetric = applyHist
	}
	var hist []scrape.Bucket
	for j := range nodes {
		hist = scrape.Add(hist, scrape.Sub(after[j].With("snapshot", "routes").Histogram(rc.NodeMetric), before[j].With("snapshot", "routes").Histogram(rc.NodeMetric)))
		rc.FullRebuilds += after[j].Sum("sluice_router_rebuilds_total") - before[j].Sum("sluice_router_rebuilds_total")
	}
	if len(hist) > 0 {
		rc.NodeCount = hist[len(hist)-1].Count
		rc.NodeP50, rc.NodeP99 = 1000*scrape.Quantile(hist, 0.5), 1000*scrape.Quantile(hist, 0.99)
	}
	b.logf("  route changes: wall p50 %.1f ms p99 %.1f ms max %.1f ms (%d missed); %s{snapshot=\"routes\"} p50 %.2f ms p99 %.2f ms over %.0f; %.0f full rebuilds",
		rc.P50, rc.P99, rc.Max, rc.Missed, rc.NodeMetric, rc.NodeP50, rc.NodeP99, rc.NodeCount, rc.FullRebuilds)
	return nil
}

type quants struct{ p50, p99, max float64 }

// quantiles returns the nearest-rank p50 and p99 and the max of ms.
func quantiles(ms []float64) quants {
	if len(ms) == 0 {
		return quants{}
	}
	s := slices.Sorted(slices.Values(ms))
	at := func(q float64) float64 { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	return quants{at(0.5), at(0.99), s[len(s)-1]}
}

// warmKeys requests route 0 once with every consumer's key on each node
// (a closed loop of 16 connections per node, the nodes at once), then a
// sample of the keys again, whose cache hit ratio says whether they all
// stayed cached.
func (b *bench) warmKeys(ctx context.Context, nodes []*harness.Node, d *dataset, sc *report.Scale) error {
	b.logf("scale: looking up each of the %d credentials once through every node's proxy", d.consumers)
	type counts struct{ next, ok, bad atomic.Int64 }
	cs := make([]counts, len(nodes))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	start := time.Now()
	stop := b.progress(func(elapsed time.Duration) {
		var done int64
		for i := range cs {
			done += cs[i].ok.Load() + cs[i].bad.Load()
		}
		total := int64(d.consumers * len(nodes))
		rate := float64(done) / elapsed.Seconds()
		b.logf("  %d/%d lookups (%.0f/s, ETA %v)", done, total, rate, (time.Duration(float64(total-done)/max(rate, 1)) * time.Second).Round(time.Second))
	})
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i, n := range nodes {
		for range 16 {
			wg.Go(func() {
				for {
					k := int(cs[i].next.Add(1)) - 1
					if k >= d.consumers || ctx.Err() != nil {
						return
					}
					status, err := get(ctx, client, n.ProxyURL+d.routePath(0), d.key(k))
					if err != nil || status != http.StatusOK {
						cs[i].bad.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s key %s: status %d, %v", n.Name, d.key(k), status, err))
						continue
					}
					cs[i].ok.Add(1)
				}
			})
		}
	}
	wg.Wait()
	stop()
	secs := time.Since(start).Seconds()
	for i := range nodes {
		sc.Nodes[i].KeysWarmed, sc.Nodes[i].WarmErrors = int(cs[i].ok.Load()), int(cs[i].bad.Load())
		sc.Nodes[i].WarmRPS = float64(d.consumers) / secs
	}
	if e := firstErr.Load(); e != nil {
		b.logf("  first failed lookup: %s", e)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The second pass on a sample: every lookup should be a cache hit.
	sample := min(d.consumers, 2000)
	rng := rand.New(rand.NewPCG(3, 4))
	before, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	keys := rng.Perm(d.consumers)[:sample]
	for _, n := range nodes {
		for _, k := range keys {
			if _, err := get(ctx, client, n.ProxyURL+d.routePath(0), d.key(k)); err != nil {
				return fmt.Errorf("bench: scale: second pass on %s: %w", n.Name, err)
			}
		}
	}
	after, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	for i := range nodes {
		diff := func(name string) float64 { return after[i].Sum(name) - before[i].Sum(name) }
		hits, miss := diff("sluice_cache_hits_total"), diff("sluice_cache_misses_total")+diff("sluice_cache_negative_hits_total")
		if hits+miss > 0 {
			sc.Nodes[i].SampleHitRatio = hits / (hits + miss)
		}
		b.logf("  %s: %d keys looked up (%d errors), %.0f/s; second pass on %d keys: cache hit ratio %.4f",
			nodes[i].Name, sc.Nodes[i].KeysWarmed, sc.Nodes[i].WarmErrors, sc.Nodes[i].WarmRPS, sample, sc.Nodes[i].SampleHitRatio)
	}
	return nil
}

func get(ctx context.Context, c *http.Client, u, key string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Apikey", key)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// steady sends open-loop traffic at rate requests/s to each node for
// dur, keys drawn uniformly over every consumer.
func (b *bench) steady(ctx context.Context, nodes []*harness.Node, d *dataset, dur time.Duration, rate int) {
	b.logf("scale: steady phase, %d requests/s per node for %v, keys uniform over the consumers", rate, dur)
	hdr := func(rng *rand.Rand) http.Header { return http.Header{"Apikey": {d.key(rng.IntN(d.consumers))}} }
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			s := load.Open(ctx, load.Options{URL: n.ProxyURL + d.routePath(0), Header: hdr, Duration: dur, Rate: rate})
			b.logf("  %s: %d requests, %d errors, p50 %.2f ms, p99 %.2f ms", n.Name, s.Requests, s.Errors, s.Latency.P50, s.Latency.P99)
		})
	}
	wg.Wait()
}

// readMemory fills each node's RSS, heap, cache and GC pauses (between
// the scrapes before and after) and the run's largest.
func (b *bench) readMemory(nodes []*harness.Node, before, after []scrape.Samples, sc *report.Scale) {
	gcFromHist := true
	for i, n := range nodes {
		sn := &sc.Nodes[i]
		if rss, err := procstat.RSS(n.Pid()); err == nil {
			sn.RSSBytes = rss
		}
		sn.HeapInuseBytes = int64(after[i].Sum("go_memstats_heap_inuse_bytes"))
		sn.CacheEntries, sn.CacheBytes = after[i].Sum("sluice_cache_entries"), after[i].Sum("sluice_cache_bytes")
		sn.CacheEvictions = after[i].Sum("sluice_cache_evictions_total")
		if h := after[i].Histogram(gcPauseHist); len(h) > 0 {
			pauses := scrape.Sub(h, before[i].Histogram(gcPauseHist))
			sn.GCPauses = pauses[len(pauses)-1].Count
			sn.GCPauseP99MS = 1000 * scrape.Quantile(pauses, 0.99)
		} else {
			gcFromHist = false
			sn.GCPauses = after[i].Sum("go_gc_duration_seconds_count") - before[i].Sum("go_gc_duration_seconds_count")
			sn.GCPauseP99MS = 1000 * after[i][`go_gc_duration_seconds{quantile="1"}`]
		}
		if math.IsNaN(sn.GCPauseP99MS) {
			sn.GCPauseP99MS = 0
		}
		sc.RSSBytes1MCredentials = max(sc.RSSBytes1MCredentials, sn.RSSBytes)
		sc.HeapInuseBytes = max(sc.HeapInuseBytes, sn.HeapInuseBytes)
		sc.GCPauseP99MS = max(sc.GCPauseP99MS, sn.GCPauseP99MS)
		b.logf("  %s: RSS %.0f MiB, heap in use %.0f MiB, %.0f cache entries (%.0f evicted), %.0f GC pauses, p99 %.3f ms",
			n.Name, float64(sn.RSSBytes)/(1<<20), float64(sn.HeapInuseBytes)/(1<<20), sn.CacheEntries, sn.CacheEvictions, sn.GCPauses, sn.GCPauseP99MS)
	}
	sc.MemoryMethod = "after every credential went through each node once and the steady phase: VmRSS of /proc/<pid>/status (bench/procstat), largest node"
	sc.GCMethod = "the runtime's GC stop-the-world pause histogram `sluice_gc_pauses_seconds` (runtime/metrics /sched/pauses/total/gc:seconds, bounds <= 25 % apart), delta over the credentials' pass and the steady phase, p99 interpolated in its buckets as histogram_quantile; largest node"
	if !gcFromHist {
		sc.GCMethod = "no `sluice_gc_pauses_seconds` on the nodes: the largest pause of the runtime's last 256 (`go_gc_duration_seconds{quantile=\"1\"}`) stands in for the p99; largest node"
	}
}

// adminCreation creates routes one by one through the Admin API of a
// fresh SQLite node and times them per tenth, until budget runs out.
func (b *bench) adminCreation(ctx context.Context, routes int, budget time.Duration) (*report.AdminCreation, error) {
	ac := &report.AdminCreation{Routes: routes, Database: "sqlite"}
	dir := filepath.Join(b.opts.Out, "scale-admin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ac, fmt.Errorf("bench: %w", err)
	}
	b.logf("scale: creating %d routes one by one through the Admin API of a fresh SQLite node (time budget %v)", routes, budget)
	hc, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: 1, Dir: dir, Args: b.args(),
		Env: b.nodeEnv("SLUICE_DATABASE=sqlite", "SLUICE_SQLITE_PATH="+filepath.Join(dir, "sluice.db"))})
	if err != nil {
		return ac, fmt.Errorf("bench: scale: %w", err)
	}
	defer hc.Stop()
	n := hc.Nodes[0]
	if _, err := n.MustAdmin(ctx, http.MethodPost, "/services", url.Values{"name": {"admin"}, "url": {b.upstream}}, http.StatusCreated); err != nil {
		return ac, fmt.Errorf("bench: scale: %w", err)
	}
	chunk := max(1, routes/10)
	start := time.Now()
	var created atomic.Int64
	stop := b.progress(func(elapsed time.Duration) {
		c := created.Load()
		b.logf("  %d/%d routes created (%.0f/s)", c, routes, float64(c)/elapsed.Seconds())
	})
	defer stop()
	t := time.Now()
	from := 0
	for i := range routes {
		if time.Since(start) > budget {
			ac.Truncated = true
			break
		}
		if _, err := n.MustAdmin(ctx, http.MethodPost, "/services/admin/routes", url.Values{"paths[]": {fmt.Sprintf("/a%07d", i)}}, http.StatusCreated); err != nil {
			return ac, fmt.Errorf("bench: scale: route %d through the Admin API: %w", i, err)
		}
		ac.Created = i + 1
		created.Store(int64(ac.Created))
		if ac.Created%chunk == 0 || ac.Created == routes {
			secs := time.Since(t).Seconds()
			ac.Chunks = append(ac.Chunks, report.AdminChunk{From: from, To: ac.Created, Seconds: secs, MSPerRoute: 1000 * secs / float64(ac.Created-from)})
			t, from = time.Now(), ac.Created
		}
	}
	stop()
	ac.Seconds = time.Since(start).Seconds()
	if len(ac.Chunks) > 1 {
		ac.LastOverFirst = ac.Chunks[len(ac.Chunks)-1].MSPerRoute / ac.Chunks[0].MSPerRoute
	}
	if m, err := scrape.Get(ctx, n.StatusURL+"/metrics"); err == nil {
		ac.Rebuilds = m.Sum("sluice_router_rebuilds_total")
	}
	b.logf("  %d routes in %.1f s; last chunk / first chunk = %.2f; %.0f route-table rebuilds", ac.Created, ac.Seconds, ac.LastOverFirst, ac.Rebuilds)
	if ctx.Err() != nil {
		return ac, ctx.Err()
	}
	return ac, nil
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
		fmt.Sprintf("match target (<= 1 µs) %s at %d routes: %.0f ns per Match", met(s.MatchNS <= 1000), s.Routes, s.MatchNS),
		fmt.Sprintf("memory target (RSS <= 1 GiB per node with the credentials cached) %s with %d credentials: %.0f MiB (heap in use %.0f MiB)",
			met(s.RSSBytes1MCredentials > 0 && s.RSSBytes1MCredentials <= 1<<30), s.Consumers, float64(s.RSSBytes1MCredentials)/(1<<20), float64(s.HeapInuseBytes)/(1<<20)),
		fmt.Sprintf("GC target (pause p99 <= 1 ms) %s: %.3f ms", met(s.GCPauseP99MS <= 1), s.GCPauseP99MS),
	}
	if st := s.Storm; st != nil && st.Calm.Requests > 0 {
		notes = append(notes, fmt.Sprintf("storm target (p99 <= 2x calm with one P) on the scale dataset %s: %.2fx, node B GOMAXPROCS=%d, %d errors",
			met(s.StormRatioOneP <= 2 && st.Calm.Errors+st.Storm.Errors == 0), s.StormRatioOneP, st.NodeBGOMAXPROCS, st.Calm.Errors+st.Storm.Errors))
	}
	if a := s.CreationViaAdmin; a != nil && len(a.Chunks) > 1 {
		notes = append(notes, fmt.Sprintf("Admin API creation linear (last chunk / first chunk per route <= 1.5) %s: %.2f over %d routes in %.0f s",
			met(a.LastOverFirst <= 1.5), a.LastOverFirst, a.Created, a.Seconds))
	}
	return notes
}
