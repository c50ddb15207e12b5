package report

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func scaleRun() *Results {
	return &Results{Schema: SchemaVersion, Profile: "scale", Database: "sqlite", Nodes: 2, Consumers: 1000000,
		Scale: &Scale{Routes: 100000, Consumers: 1000000, Database: "sqlite", CacheBackend: "freecache", MemCacheSize: "763m",
			DBUpdateFrequencyS: 0.25,
			Seed:               Seed{BatchSize: 2000, Entities: 2100002, Seconds: 100, EntitiesPerSec: 21000, RoutesSeconds: 5, ConsumerSeconds: 95},
			ColdStartS:         3.25,
			RouteChangeApplyMS: RouteChanges{P50: 130, P99: 260, Max: 270, N: 99, Missed: 1, ProbeMS: 2,
				NodeP50: 0.4, NodeP99: 3.2, NodeCount: 200, NodeMetric: "sluice_snapshot_apply_duration_seconds", FullRebuilds: 0, Method: "one at a time"},
			MatchNS: 400, MatchWallNS: 420, MatchMethod: "locked thread",
			RSSBytes1MCredentials: 900 << 20, HeapInuseBytes: 800 << 20, MemoryMethod: "VmRSS",
			GCPauseP99MS: 0.75, GCMethod: "sluice_gc_pauses_seconds",
			StormRatioOneP: 1.8,
			Storm: &Storm{Rate: 500, PhaseS: 5, NodeBGOMAXPROCS: 1, Pinning: "node B on CPU 1",
				Calm: StormPhase{Requests: 2500, Latency: Latency{P99: 2}}, Storm: StormPhase{Requests: 2500, Latency: Latency{P99: 3.6}}},
			CreationViaAdmin: &AdminCreation{Routes: 20, Created: 20, Database: "sqlite", Seconds: 2, LastOverFirst: 1.1, Rebuilds: 21,
				Chunks: []AdminChunk{{From: 0, To: 10, Seconds: 0.9, MSPerRoute: 90}, {From: 10, To: 20, Seconds: 1.1, MSPerRoute: 110}}},
			Nodes: []ScaleNode{{Name: "node-1", ColdStartS: 3.25, RouteChangeP50MS: 0.2, RouteChangeP99MS: 0.5, KeysWarmed: 1000000,
				WarmRPS: 4000, SampleHitRatio: 1, RSSBytes: 900 << 20, HeapInuseBytes: 800 << 20, CacheEntries: 2000000, GCPauses: 120, GCPauseP99MS: 0.75}},
		}}
}

// TestScaleMarkdown checks the Scale section: every measurement with its
// method, the nodes' table, the Admin API chunks and the storm.
func TestScaleMarkdown(t *testing.T) {
	md := Markdown(scaleRun(), nil)
	for _, want := range []string{
		"## Scale: 100000 routes, 1000000 key-auth consumers (sqlite)",
		"batches of 2000 operations",
		"mem_cache_size=763m",
		"| cold_start_s | 3.25 |",
		"| route_change_apply_ms (wall) | p50 130, p99 260, max 270 (n 99, 1 missed) | one at a time |",
		"| route_change_apply_ms (node) | p50 0.40, p99 3.20 over 200 applies | `sluice_snapshot_apply_duration_seconds{snapshot=\"routes\"}`",
		"| full rebuilds during the changes | 0 |",
		"| match_ns_100k | 400 ns CPU (420 ns wall) | locked thread |",
		"| rss_bytes_1m_credentials | 900 MiB | VmRSS |",
		"| heap_inuse_bytes | 800 MiB |",
		"| gc_pause_p99_ms | 0.75 | sluice_gc_pauses_seconds |",
		"| storm_ratio_one_p | 1.80 (calm p99 2.00 ms, storm p99 3.60 ms",
		"| creation_via_admin | 20 of 20 routes in 2.0 s, last chunk / first chunk = 1.10, 21 rebuilds |",
		"| node-1 | 3.25 | 0.20 | 0.50 | 1000000 | 0 | 4000 | 1.0000 | 900 | 800 | 2000000 | 0 | 120 | 0.75 |",
		"| 11-20 | 1.1 | 110 |",
		"## Invalidation storm",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	r := scaleRun()
	r.Scale.CreationViaAdmin.Truncated = true
	if md := Markdown(r, nil); !strings.Contains(md, "time budget ran out") {
		t.Errorf("a truncated creation is not said so:\n%s", md)
	}
	r.Scale.Storm, r.Scale.CreationViaAdmin = nil, nil
	if md := Markdown(r, nil); strings.Contains(md, "storm_ratio_one_p") || strings.Contains(md, "creation_via_admin") || strings.Contains(md, "per chunk") {
		t.Errorf("phases not run are rendered:\n%s", md)
	}
}

// TestScaleRoundTrip checks that the scale object survives results.json
// and that report.html renders its tables.
func TestScaleRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := scaleRun()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	got, err := Read(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Scale, r.Scale) {
		t.Errorf("scale after results.json:\n%+v\nwant\n%+v", got.Scale, r.Scale)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"route_change_apply_ms"`, `"match_ns_100k"`, `"rss_bytes_1m_credentials"`, `"gc_pause_p99_ms"`, `"storm_ratio_one_p"`, `"cold_start_s"`, `"creation_via_admin"`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("results.json lacks %s", field)
		}
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "<td>match_ns_100k</td>") || !strings.Contains(string(html), "<h2>Scale: 100000 routes") {
		t.Errorf("report.html lacks the scale table")
	}
}
