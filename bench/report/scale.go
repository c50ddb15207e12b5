package report

import (
	"fmt"
	"strings"
)

// Scale is the scale profile's run: a datastore seeded in batches with
// Routes routes and Consumers key-auth consumers, two nodes on it, and
// what that size costs them. Every measurement names its method.
type Scale struct {
	Routes    int    `json:"routes"`
	Consumers int    `json:"consumers"`
	Database  string `json:"database"`
	// PGSchema is the run's own PostgreSQL schema, whose tables are
	// dropped at the end ("" on SQLite).
	PGSchema string `json:"pg_schema,omitempty"`
	// CacheBackend and MemCacheSize are the nodes' cache settings, sized
	// for every credential and its consumer.
	CacheBackend string `json:"cache_backend"`
	MemCacheSize string `json:"mem_cache_size"`
	// DBUpdateFrequencyS is the nodes' db_update_frequency; Push whether
	// they also apply pushed events (PostgreSQL).
	DBUpdateFrequencyS float64 `json:"db_update_frequency_s"`
	Push               bool    `json:"push"`
	// NodeGOMAXPROCS is each node's GOMAXPROCS: the machine's CPUs shared
	// by the two nodes, unless --node-env set it.
	NodeGOMAXPROCS int  `json:"node_gomaxprocs"`
	Seed           Seed `json:"seed"`
	// ColdStartS is node A's cold start: from starting its process to the
	// first proxied 200 on a seeded route (the full build of the route
	// table included). Each node's is in Nodes.
	ColdStartS float64 `json:"cold_start_s"`
	// RouteChangeApplyMS is how long route changes made on node A took to
	// be served by every node, and what the nodes' own metrics say.
	RouteChangeApplyMS RouteChanges `json:"route_change_apply_ms"`
	// MatchNS is router.Match's CPU time per call over Routes routes in
	// the bench process, the thread's (getrusage RUSAGE_THREAD; the wall
	// time off Linux); the field keeps the name at any size.
	// MatchWallNS is the wall time per call, which on a busy machine also
	// holds the time the thread waited for a CPU.
	MatchNS     float64 `json:"match_ns_100k"`
	MatchWallNS float64 `json:"match_wall_ns"`
	MatchMethod string  `json:"match_method"`
	// RSSBytes1MCredentials and HeapInuseBytes are the largest over the
	// nodes after every credential went through each node once.
	RSSBytes1MCredentials int64   `json:"rss_bytes_1m_credentials"`
	HeapInuseBytes        int64   `json:"heap_inuse_bytes"`
	MemoryMethod          string  `json:"memory_method"`
	GCPauseP99MS          float64 `json:"gc_pause_p99_ms"`
	GCMethod              string  `json:"gc_method"`
	// StormRatioOneP is Storm's p99 ratio (storm / calm) on this dataset.
	StormRatioOneP float64 `json:"storm_ratio_one_p"`
	Storm          *Storm  `json:"storm,omitempty"`
	// CreationViaAdmin is the one-by-one creation of routes through the
	// Admin API on a fresh SQLite node.
	CreationViaAdmin *AdminCreation `json:"creation_via_admin,omitempty"`
	Nodes            []ScaleNode    `json:"nodes"`
}

// Seed is how the datastore was filled: in batches of BatchSize
// operations, one transaction each, with no cluster events.
type Seed struct {
	BatchSize       int     `json:"batch_size"`
	Entities        int     `json:"entities"`
	Seconds         float64 `json:"seconds"`
	EntitiesPerSec  float64 `json:"entities_per_s"`
	RoutesSeconds   float64 `json:"routes_s"`
	ConsumerSeconds float64 `json:"consumers_s"`
}

// RouteChanges are the route changes made on node A one at a time,
// created, updated and deleted in turn.
type RouteChanges struct {
	// P50, P99 and Max are the wall windows (ms) from node A's Admin API
	// answer to the last node's proxy serving the change (probed every
	// ProbeMS); N counts the changes every node showed, Missed the others.
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	N       int     `json:"n"`
	Missed  int     `json:"missed"`
	ProbeMS float64 `json:"probe_ms"`
	// NodeP50 and NodeP99 (ms) are the nodes' own apply times over the
	// changes, interpolated from the buckets of NodeMetric (as PromQL's
	// histogram_quantile), NodeCount observations from every node.
	NodeP50    float64 `json:"node_p50"`
	NodeP99    float64 `json:"node_p99"`
	NodeCount  float64 `json:"node_count"`
	NodeMetric string  `json:"node_metric"`
	// FullRebuilds is the delta of sluice_router_rebuilds_total summed
	// over the nodes during the changes.
	FullRebuilds float64 `json:"full_rebuilds"`
	Method       string  `json:"method"`
}

// AdminCreation is K routes created one by one through the Admin API over
// HTTP, timed per chunk, so that linearity shows: LastOverFirst is the
// last chunk's time over the first's (1 when linear).
type AdminCreation struct {
	Routes   int          `json:"routes"`
	Created  int          `json:"created"`
	Database string       `json:"database"`
	Seconds  float64      `json:"seconds"`
	Chunks   []AdminChunk `json:"chunks"`
	// LastOverFirst compares the per-route time of the last and first
	// chunks.
	LastOverFirst float64 `json:"last_over_first"`
	// Rebuilds is the node's sluice_router_rebuilds_total at the end.
	Rebuilds float64 `json:"rebuilds"`
	// Truncated says the time budget ran out before Routes were created.
	Truncated bool `json:"truncated"`
}

// AdminChunk is one chunk of the creation: routes From (excluded) to To.
type AdminChunk struct {
	From       int     `json:"from"`
	To         int     `json:"to"`
	Seconds    float64 `json:"seconds"`
	MSPerRoute float64 `json:"ms_per_route"`
}

// ScaleNode is one node of the scale run.
type ScaleNode struct {
	Name       string  `json:"name"`
	ColdStartS float64 `json:"cold_start_s"`
	// RouteChangeP50MS and RouteChangeP99MS are this node's wall windows.
	RouteChangeP50MS float64 `json:"route_change_p50_ms"`
	RouteChangeP99MS float64 `json:"route_change_p99_ms"`
	// KeysWarmed counts the credentials looked up through its proxy (200),
	// WarmErrors the other answers; WarmRPS the rate of that pass.
	KeysWarmed int     `json:"keys_warmed"`
	WarmErrors int     `json:"warm_errors"`
	WarmRPS    float64 `json:"warm_rps"`
	// SampleHitRatio is the entity cache's hit ratio over a second pass
	// on a sample of the keys (1 when everything stayed cached).
	SampleHitRatio float64 `json:"sample_hit_ratio"`
	RSSBytes       int64   `json:"rss_bytes"`
	HeapInuseBytes int64   `json:"heap_inuse_bytes"`
	CacheEntries   float64 `json:"cache_entries"`
	CacheBytes     float64 `json:"cache_bytes"`
	// CacheEvictions is sluice_cache_evictions_total at the end: 0 when
	// mem_cache_size held every credential and consumer.
	CacheEvictions float64 `json:"cache_evictions"`
	GCPauses       float64 `json:"gc_pauses"`
	GCPauseP99MS   float64 `json:"gc_pause_p99_ms"`
}

func scaleMarkdown(s *Scale) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Scale: %d routes, %d key-auth consumers (%s)\n\n", s.Routes, s.Consumers, s.Database)
	fmt.Fprintf(&b, "Seeded through the datastore in batches of %d operations (one transaction each, no cluster events): %d entities in %.1f s (%.0f/s; routes %.1f s, consumers and credentials %.1f s). "+
		"Two nodes, cache_backend=%s, mem_cache_size=%s, db_update_frequency=%gs, push %s, GOMAXPROCS=%d each; a global key-auth plugin, so every request looks up its key.\n\n",
		s.Seed.BatchSize, s.Seed.Entities, s.Seed.Seconds, s.Seed.EntitiesPerSec, s.Seed.RoutesSeconds, s.Seed.ConsumerSeconds,
		s.CacheBackend, s.MemCacheSize, s.DBUpdateFrequencyS, onOff(s.Push), s.NodeGOMAXPROCS)
	rc := s.RouteChangeApplyMS
	b.WriteString("| measurement | value | method |\n|---|---|---|\n")
	row := func(name, value, method string) { fmt.Fprintf(&b, "| %s | %s | %s |\n", name, value, method) }
	row("cold_start_s", fmt.Sprintf("%.2f", s.ColdStartS), "node A's process start to the first proxied 200 on a seeded route, full route-table build included")
	row("route_change_apply_ms (wall)", fmt.Sprintf("p50 %s, p99 %s, max %s (n %d, %d missed)", fmtMS(rc.P50), fmtMS(rc.P99), fmtMS(rc.Max), rc.N, rc.Missed), rc.Method)
	row("route_change_apply_ms (node)", fmt.Sprintf("p50 %s, p99 %s over %.0f applies", fmtMS(rc.NodeP50), fmtMS(rc.NodeP99), rc.NodeCount),
		fmt.Sprintf("`%s{snapshot=\"routes\"}` delta over the changes, every node, quantiles interpolated in buckets as histogram_quantile", rc.NodeMetric))
	row("full rebuilds during the changes", fmt.Sprintf("%.0f", rc.FullRebuilds), "`sluice_router_rebuilds_total` delta, every node")
	row("match_ns_100k", fmt.Sprintf("%.0f ns CPU (%.0f ns wall)", s.MatchNS, s.MatchWallNS), s.MatchMethod)
	row("rss_bytes_1m_credentials", fmt.Sprintf("%.0f MiB", float64(s.RSSBytes1MCredentials)/(1<<20)), s.MemoryMethod)
	row("heap_inuse_bytes", fmt.Sprintf("%.0f MiB", float64(s.HeapInuseBytes)/(1<<20)), "`go_memstats_heap_inuse_bytes`, largest node, same moment")
	row("gc_pause_p99_ms", fmtMS(s.GCPauseP99MS), s.GCMethod)
	if s.Storm != nil {
		row("storm_ratio_one_p", fmt.Sprintf("%.2f (calm p99 %s ms, storm p99 %s ms, %.0f changes/s, node B GOMAXPROCS=%d)",
			s.StormRatioOneP, fmtMS(s.Storm.Calm.Latency.P99), fmtMS(s.Storm.Storm.Latency.P99), s.Storm.ChangesPerSec, s.Storm.NodeBGOMAXPROCS),
			"the storm phase on this dataset: "+dash(s.Storm.Pinning))
	}
	if a := s.CreationViaAdmin; a != nil {
		trunc := ""
		if a.Truncated {
			trunc = ", time budget ran out"
		}
		row("creation_via_admin", fmt.Sprintf("%d of %d routes in %.1f s, last chunk / first chunk = %.2f, %.0f rebuilds%s", a.Created, a.Routes, a.Seconds, a.LastOverFirst, a.Rebuilds, trunc),
			fmt.Sprintf("one POST /services/{s}/routes after the other over HTTP on a fresh %s node, timed per chunk", a.Database))
	}
	b.WriteString("\n| node | cold start s | change p50 ms | change p99 ms | keys warmed | warm errors | warm rps | sample hit ratio | RSS MiB | heap in use MiB | cache entries | cache evictions | GC pauses | GC pause p99 ms |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range s.Nodes {
		fmt.Fprintf(&b, "| %s | %.2f | %s | %s | %d | %d | %.0f | %.4f | %.0f | %.0f | %.0f | %.0f | %.0f | %s |\n", n.Name, n.ColdStartS,
			fmtMS(n.RouteChangeP50MS), fmtMS(n.RouteChangeP99MS), n.KeysWarmed, n.WarmErrors, n.WarmRPS, n.SampleHitRatio,
			float64(n.RSSBytes)/(1<<20), float64(n.HeapInuseBytes)/(1<<20), n.CacheEntries, n.CacheEvictions, n.GCPauses, fmtMS(n.GCPauseP99MS))
	}
	if a := s.CreationViaAdmin; a != nil && len(a.Chunks) > 0 {
		b.WriteString("\nRoutes created through the Admin API, per chunk:\n\n| routes | seconds | ms per route |\n|---|---|---|\n")
		for _, c := range a.Chunks {
			fmt.Fprintf(&b, "| %d-%d | %.1f | %s |\n", c.From+1, c.To, c.Seconds, fmtMS(c.MSPerRoute))
		}
	}
	if s.Storm != nil {
		b.WriteString(stormTable(s.Storm))
	}
	return b.String()
}
