package run

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/postgres"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// openSQLite is the scale run's Options.OpenStore on SQLite, as
// cmd/sluice's reads the file from SLUICE_SQLITE_PATH.
func openSQLite(ctx context.Context, env []string) (store.Store, error) {
	var path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SLUICE_SQLITE_PATH="); ok {
			path = v
		}
	}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		return nil, err
	}
	if err := st.Up(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// TestScaleProfile runs a mini scale profile (2,000 routes, 5,000
// consumers) on real node processes and SQLite, and checks that every
// field of the scale object was measured and is plausible. Nothing about
// speed is asserted.
func TestScaleProfile(t *testing.T) {
	p := Profile{Name: "scale-mini", Consumers: 5000, ScaleRoutes: 2000, ScaleRouteChanges: 15,
		ScaleAdminRoutes: 200, ScaleAdminBudget: time.Minute, ScaleSteady: time.Second, ScaleSteadyRate: 200,
		// A small cache, mostly written: freecache's untouched pages
		// count in the Go heap but not in RSS.
		ScaleMemCacheSize: "16m",
		StormPhase:        1500 * time.Millisecond, StormRate: 400, StormChanges: 50}
	r, out := runMiniWith(t, Options{Profile: p, Database: "sqlite", OpenStore: openSQLite})
	s := r.Scale
	if s == nil {
		t.Fatal("no scale object in results.json")
	}
	t.Logf("scale: %+v", *s)
	if s.Routes != 2000 || s.Consumers != 5000 || s.MemCacheSize != "16m" || s.Seed.Entities != 2+2000+2*5000 || s.Seed.EntitiesPerSec <= 0 {
		t.Errorf("sizes and seed: %d routes, %d consumers, mem_cache_size %s, seed %+v; want 2000, 5000, 16m, 12002 entities", s.Routes, s.Consumers, s.MemCacheSize, s.Seed)
	}
	if s.ColdStartS <= 0 || len(s.Nodes) != 2 {
		t.Fatalf("cold start %.3f s, %d nodes; want > 0 and 2 nodes", s.ColdStartS, len(s.Nodes))
	}
	rc := s.RouteChangeApplyMS
	if rc.N != 15 || rc.Missed != 0 || rc.P50 <= 0 || rc.P50 > rc.P99 || rc.P99 > rc.Max {
		t.Errorf("route changes (wall): %+v; want 15 seen on every node, 0 < p50 <= p99 <= max", rc)
	}
	if rc.NodeCount < 15 || rc.NodeP50 <= 0 || rc.NodeP50 > rc.NodeP99 || (rc.NodeMetric != applyHist && rc.NodeMetric != rebuildHist) {
		t.Errorf("route changes (node): %+v; want >= 15 applies from the nodes' metrics, 0 < p50 <= p99", rc)
	}
	// Without incremental updates, every write rebuilds node A's table.
	if rc.NodeMetric == rebuildHist && rc.FullRebuilds < 15 {
		t.Errorf("%.0f full rebuilds over 15 changes measured by the rebuild histogram, want >= 15", rc.FullRebuilds)
	}
	if s.MatchNS <= 0 || s.MatchWallNS <= 0 || !strings.Contains(s.MatchMethod, "2000 routes") || (runtime.GOOS == "linux") != strings.Contains(s.MatchMethod, "RUSAGE_THREAD") {
		t.Errorf("match: %.0f ns CPU, %.0f ns wall, method %q", s.MatchNS, s.MatchWallNS, s.MatchMethod)
	}
	for _, n := range s.Nodes {
		if n.ColdStartS <= 0 || n.KeysWarmed != 5000 || n.WarmErrors != 0 || n.SampleHitRatio < 0.999 || n.CacheEvictions != 0 {
			t.Errorf("%s: %+v; want a cold start, 5000 keys looked up without error, all still cached (hit ratio 1, no evictions)", n.Name, n)
		}
		if n.HeapInuseBytes <= 0 || n.RSSBytes <= n.HeapInuseBytes {
			t.Errorf("%s: RSS %d, heap in use %d; want RSS > heap > 0", n.Name, n.RSSBytes, n.HeapInuseBytes)
		}
		if n.GCPauses <= 0 || n.GCPauseP99MS <= 0 || n.RouteChangeP50MS > n.RouteChangeP99MS {
			t.Errorf("%s: %.0f GC pauses, p99 %.3f ms, route change p50 %.1f p99 %.1f ms", n.Name, n.GCPauses, n.GCPauseP99MS, n.RouteChangeP50MS, n.RouteChangeP99MS)
		}
	}
	if s.RSSBytes1MCredentials <= s.HeapInuseBytes || s.GCPauseP99MS <= 0 || !strings.Contains(s.GCMethod, gcPauseHist) {
		t.Errorf("RSS %d, heap %d, GC p99 %.3f ms by %q; want RSS > heap, a p99 from %s", s.RSSBytes1MCredentials, s.HeapInuseBytes, s.GCPauseP99MS, s.GCMethod, gcPauseHist)
	}
	if s.Storm == nil || s.StormRatioOneP <= 0 || s.Storm.Calm.Errors+s.Storm.Storm.Errors != 0 || s.Storm.Storm.Events <= 0 {
		t.Errorf("storm on the scale dataset: ratio %.2f, %+v; want measured without errors, events applied on node B", s.StormRatioOneP, s.Storm)
	}
	a := s.CreationViaAdmin
	if a == nil || a.Created != 200 || a.Truncated || len(a.Chunks) != 10 || a.Chunks[9].To != 200 || a.LastOverFirst <= 0 || a.Rebuilds <= 0 {
		t.Fatalf("creation via the Admin API: %+v; want 200 routes in 10 chunks, a ratio and the rebuilds", a)
	}
	for _, c := range a.Chunks {
		if c.To-c.From != 20 || c.MSPerRoute <= 0 {
			t.Errorf("chunk %+v; want 20 routes, timed", c)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Scale: 2000 routes, 5000 key-auth consumers (sqlite)", "| cold_start_s |", "| match_ns_100k |", "| storm_ratio_one_p |", "route change target"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if r.Throughput != nil || r.Consistency != nil || r.Storm != nil {
		t.Errorf("the scale profile ran other phases: %d throughput rows, %d consistency rows, storm %v", len(r.Throughput), len(r.Consistency), r.Storm != nil)
	}
}

// TestScaleNeedsOpenStore checks that the scale profile is refused,
// before anything starts, without a way to seed the datastore or on a
// datastore it does not support.
func TestScaleNeedsOpenStore(t *testing.T) {
	p := Profile{Name: "scale", Consumers: 10, ScaleRoutes: 10}
	for _, tt := range []struct {
		db   string
		open func(context.Context, []string) (store.Store, error)
		want string
	}{
		{"sqlite", nil, "needs Options.OpenStore"},
		{"cassandra", openSQLite, "want sqlite or postgres"},
	} {
		_, err := Run(context.Background(), Options{Binary: "/nonexistent/sluice", Profile: p, Out: t.TempDir(), Database: tt.db, OpenStore: tt.open})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run on %s: %v; want an error saying %q", tt.db, err, tt.want)
		}
	}
}

// TestMemCacheSize checks the cache sizing: the node default at least,
// then cacheBytesPerConsumer per consumer, rounded up to MiB.
func TestMemCacheSize(t *testing.T) {
	for consumers, want := range map[int]string{0: "128m", 5000: "128m", 1_000_000: "535m"} {
		if got := memCacheSize(consumers); got != want {
			t.Errorf("memCacheSize(%d) = %s, want %s", consumers, got, want)
		}
	}
}

// TestScaleProfilePostgres runs a smaller scale profile on PostgreSQL
// (nodes with push on), without the storm and the Admin API creation, and
// checks that it measured with push and dropped its schema's tables.
func TestScaleProfilePostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	pgEnv := []string{"SLUICE_PG_HOST=" + pg.Host, "SLUICE_PG_PORT=" + strconv.Itoa(pg.Port), "SLUICE_PG_USER=" + pg.User,
		"SLUICE_PG_PASSWORD=" + pg.Password, "SLUICE_PG_DATABASE=" + pg.Database}
	open := func(ctx context.Context, env []string) (store.Store, error) {
		cfg := postgres.Config{Host: pg.Host, Port: pg.Port, User: pg.User, Password: pg.Password, Database: pg.Database}
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "SLUICE_PG_SCHEMA="); ok {
				cfg.Schema = v
			}
		}
		st, err := postgres.Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if err := st.Up(ctx); err != nil {
			st.Close()
			return nil, err
		}
		return st, nil
	}
	p := Profile{Name: "scale-mini-pg", Consumers: 2000, ScaleRoutes: 1000, ScaleRouteChanges: 9,
		ScaleSteady: 500 * time.Millisecond, ScaleSteadyRate: 100, ScaleMemCacheSize: "16m"}
	r, _ := runMiniWith(t, Options{Profile: p, Database: "postgres", OpenStore: open, NodeEnv: pgEnv})
	s := r.Scale
	if s == nil {
		t.Fatal("no scale object in results.json")
	}
	t.Cleanup(func() { dropSchema(t, pg.DSN, s.PGSchema) })
	rc := s.RouteChangeApplyMS
	if !s.Push || s.Database != "postgres" || !strings.HasPrefix(s.PGSchema, "sluice_scale_") || rc.N != 9 || rc.Missed != 0 || rc.P50 > rc.P99 {
		t.Errorf("scale on PostgreSQL: push %v, schema %q, route changes %+v; want push, a schema of its own, 9 changes seen everywhere", s.Push, s.PGSchema, rc)
	}
	for _, n := range s.Nodes {
		if n.KeysWarmed != 2000 || n.WarmErrors != 0 || n.ColdStartS <= 0 {
			t.Errorf("%s: %+v; want 2000 keys looked up without error", n.Name, n)
		}
	}
	if s.Storm != nil || s.CreationViaAdmin != nil {
		t.Errorf("phases the profile leaves out ran: storm %v, Admin API creation %v", s.Storm != nil, s.CreationViaAdmin != nil)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, s.PGSchema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tables left in schema %s, want its tables dropped", tables, s.PGSchema)
	}
}

// dropSchema drops the (empty) schema a scale run left.
func dropSchema(t *testing.T, dsn, schema string) {
	if schema == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

// TestNodeApply checks the node view of the route changes: the apply
// histogram when the nodes export it (even at 0), else the rebuild
// histogram, summed over the nodes for snapshot="routes" only, and no
// quantile (not NaN, which results.json cannot hold) without observations.
func TestNodeApply(t *testing.T) {
	parse := func(text string) scrape.Samples {
		s, err := scrape.Parse(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hist := func(name, snapshot string, le1, inf, rebuilds float64) string {
		return fmt.Sprintf("%s_bucket{snapshot=%q,le=\"0.001\"} %g\n%s_bucket{snapshot=%q,le=\"+Inf\"} %g\n%s_count{snapshot=%q} %g\nsluice_router_rebuilds_total %g\n",
			name, snapshot, le1, name, snapshot, inf, name, snapshot, inf, rebuilds)
	}
	t.Run("incremental", func(t *testing.T) {
		before := []scrape.Samples{parse(hist(applyHist, "routes", 0, 0, 1)), parse(hist(applyHist, "routes", 0, 0, 1))}
		after := []scrape.Samples{parse(hist(applyHist, "routes", 10, 10, 1) + hist(applyHist, "plugins", 50, 50, 1)), parse(hist(applyHist, "routes", 9, 10, 1))}
		var rc report.RouteChanges
		nodeApply(before, after, &rc)
		// 19 of 20 within 1 ms: the p99 falls in +Inf, reported as the
		// highest finite bound, as histogram_quantile does.
		if rc.NodeMetric != applyHist || rc.NodeCount != 20 || rc.FullRebuilds != 0 || rc.NodeP50 <= 0 || rc.NodeP50 >= 1 || rc.NodeP99 != 1 {
			t.Errorf("%+v; want 20 applies of routes (not the plugins'), p50 within 1 ms, p99 at the 1 ms bound, no rebuild", rc)
		}
	})
	t.Run("rebuilds", func(t *testing.T) {
		before := []scrape.Samples{parse(hist(rebuildHist, "routes", 0, 1, 1))}
		after := []scrape.Samples{parse(hist(rebuildHist, "routes", 0, 4, 4))}
		var rc report.RouteChanges
		nodeApply(before, after, &rc)
		if rc.NodeMetric != rebuildHist || rc.NodeCount != 3 || rc.FullRebuilds != 3 {
			t.Errorf("%+v; want 3 rebuilds from the rebuild histogram", rc)
		}
	})
	t.Run("none", func(t *testing.T) {
		s := []scrape.Samples{parse(hist(applyHist, "routes", 0, 0, 1))}
		var rc report.RouteChanges
		nodeApply(s, s, &rc)
		if rc.NodeCount != 0 || math.IsNaN(rc.NodeP50) || math.IsNaN(rc.NodeP99) {
			t.Errorf("%+v; want no count and no NaN", rc)
		}
	})
}
