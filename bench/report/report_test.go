package report

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() *Results {
	return &Results{
		Schema: SchemaVersion, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Profile: "smoke", Database: "sqlite", Nodes: 3,
		Consumers: 10, Machine: Machine{CPUModel: "AMD EPYC", NProc: 2},
		Throughput: []Throughput{
			{Target: "direct", RPS: 9000, LatencyMS: Latency{P50: 0.1, P99: 1, Max: 2}},
			{Target: "nginx", RPS: 5000, CPUMicrosPerRequest: 15, LatencyMS: Latency{P50: 0.2, P99: 1.5}},
			{Target: "go-fasthttp", RPS: 4800, Conns: 32, CPUMicrosPerRequest: 18.5, LatencyMS: Latency{P50: 0.2, P99: 1.6}},
			{Target: "go-httputil", RPS: 3500, Conns: 32, CPUMicrosPerRequest: 37, LatencyMS: Latency{P50: 0.3, P99: 1.9}},
			{Target: "gateway", CacheBackend: "otter", RPS: 3000, CPUMicrosPerRequest: 40, HitRatio: 0.99, LatencyMS: Latency{P50: 0.3, P99: 2}},
		},
		Consistency: []Consistency{
			{DBUpdateFrequencyS: 0.25, WindowMS: Latency{P50: 100, P99: 240, Max: 250}, Samples: 8, PollsPerSecPerNode: 4, Windows: []float64{1, 100, 240, 250}, ByChange: map[string]Latency{"route-created": {P50: 1}}},
			{DBUpdateFrequencyS: 1, WindowMS: Latency{P50: 500, P99: 990, Max: 1000}, Samples: 8, PollsPerSecPerNode: 1, Windows: []float64{500, 990}},
			{DBUpdateFrequencyS: 1, Push: true, WindowMS: Latency{P50: 5, P99: 20, Max: 30}, Samples: 8, PollsPerSecPerNode: 1, Windows: []float64{5, 20}},
			{DBUpdateFrequencyS: 5, WindowMS: Latency{P50: 2500, P99: 4990, Max: 5000}, Samples: 8, Missed: 1, PollsPerSecPerNode: 0.2},
		},
		Storm: &Storm{DBUpdateFrequencyS: 1, Rate: 500, PhaseS: 2, Pinning: "node A on CPU 0; node B on CPU 1", NodeBGOMAXPROCS: 1, TargetChangesPerSec: 200, ChangesPerSec: 198,
			Calm:  StormPhase{Requests: 1000, Latency: Latency{P50: 0.3, P99: 1, Max: 2}, CPUPercent: 7},
			Storm: StormPhase{Requests: 1000, Latency: Latency{P50: 0.4, P99: 3, Max: 4}, CPUPercent: 9, Events: 790, Rebuilds: 4, RebuildMS: 16.5}},
		Recommendations: []string{"x"},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := sample()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	got, err := Read(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip changed the results:\n got %+v\nwant %+v", got, r)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The documented schema's field names (bench/README.md).
	for _, key := range []string{`"db_update_frequency_s"`, `"push"`, `"window_ms"`, `"p99"`, `"samples"`, `"target"`, `"cache_backend"`, `"rps"`, `"latency_ms"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("results.json lacks %s", key)
		}
	}
	for _, f := range []string{"report.md", "report.html", "window_cdf.png", "throughput.png", "latency.png"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() < 100 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "| gateway | otter | 3000 |") || !strings.Contains(string(md), "| 1s | on | 8 | 0 | 5.00 | 20.0 | 30.0 |") {
		t.Errorf("report.md lacks the expected table rows:\n%s", md)
	}
	for _, want := range []string{"| go-fasthttp | - | 4800 | 32 | 18.5 | - | - |", "| go-httputil | - | 3500 | 32 | 37.0 | - | - |", "## Invalidation storm", "CPUs: node A on CPU 0; node B on CPU 1. Node B ran with GOMAXPROCS=1.", "| storm | 1000 | 0 | 0.40 | 3.00 |", "| 9 | 198 | 790 | 4 | 16.5 |", "storm p99 / calm p99 = 3.00 (target 2)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if strings.Count(string(html), "data:image/png;base64,") != 3 {
		t.Error("report.html does not inline the 3 plots")
	}
}

// TestMarkdownSkippedPhases checks that a phase left out (--skip) renders
// no empty table.
func TestMarkdownSkippedPhases(t *testing.T) {
	r := sample()
	r.Throughput, r.Consistency = nil, nil
	md := Markdown(r, nil)
	for _, heading := range []string{"## Throughput", "## Consistency"} {
		if strings.Contains(md, heading) {
			t.Errorf("report with the phase skipped has %q:\n%s", heading, md)
		}
	}
	if !strings.Contains(md, "## Invalidation storm") {
		t.Errorf("storm section missing:\n%s", md)
	}
}

func TestReadRejectsOtherSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(path, []byte(`{"schema":99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), "schema 99") {
		t.Errorf("Read of schema 99 = %v, want a schema error", err)
	}
}

func TestRecommend(t *testing.T) {
	rows := sample().Consistency
	tests := []struct {
		name   string
		rows   []Consistency
		budget time.Duration
		want   string
	}{
		{"cheapest fitting is push at 1s", rows, 100 * time.Millisecond, "use db_update_frequency=1 with db_update_push=on (measured p99 20 ms"},
		{"poll alone preferred at the same frequency", rows, time.Second, "use db_update_frequency=1 (measured p99 990 ms"},
		{"missed changes disqualify", rows, 10 * time.Second, "use db_update_frequency=1 (measured p99 990 ms"},
		{"nothing fits", rows[:2], 10 * time.Millisecond, "no measured setting fits; the best was db_update_frequency=0.25 with p99 240 ms"},
		{"no rows", nil, time.Second, "no setting measured"},
		{"poll cost stated", rows[:1], time.Second, "4.00 polls/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Recommend(tt.rows, tt.budget); !strings.Contains(got, tt.want) {
				t.Errorf("Recommend(%v) = %q, want it to contain %q", tt.budget, got, tt.want)
			}
		})
	}
}
