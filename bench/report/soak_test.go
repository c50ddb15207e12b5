package report

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSlope(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{"exact line", []float64{0, 1, 2, 3}, []float64{5, 7, 9, 11}, 2},
		{"falling", []float64{0, 1, 2}, []float64{3, 2, 1}, -1},
		{"flat with noise", []float64{0, 1, 2, 3}, []float64{10, 11, 10, 11}, 0.2},
		{"uneven spacing", []float64{0, 1, 10}, []float64{0, 1, 10}, 1},
		{"one point", []float64{1}, []float64{5}, 0},
		{"same x", []float64{2, 2, 2}, []float64{1, 5, 9}, 0},
		{"length mismatch", []float64{0, 1}, []float64{1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Slope(tt.xs, tt.ys); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Slope = %v, want %v", got, tt.want)
			}
		})
	}
}

// soakRun builds n intervals 10 s apart, with rss(i) MiB and gor(i)
// goroutines on node-1 and a steady node-2.
func soakRun(n int, rss, gor func(i int) float64) *Soak {
	s := &Soak{IntervalS: 10, RateRPS: 1000}
	for i := range n {
		s.Intervals = append(s.Intervals, SoakInterval{TS: float64(10 * (i + 1)), Requests: 10000, LatencyMS: Latency{P50: 1, P99: 5},
			Nodes: []SoakNode{
				{Name: "node-1", RSSBytes: int64(rss(i) * (1 << 20)), Goroutines: gor(i), HeapInuseBytes: 50 << 20, GCPauseMaxMS: 0.5},
				{Name: "node-2", RSSBytes: 100 << 20, Goroutines: 40, HeapInuseBytes: 50 << 20, GCPauseMaxMS: 1.5},
			}})
	}
	return s
}

func TestJudge(t *testing.T) {
	steady := func(int) float64 { return 40 }
	t.Run("flat", func(t *testing.T) {
		// Warm-up growth in the first third is ignored; afterwards RSS
		// wobbles by 2 MiB around 120.
		s := soakRun(180, func(i int) float64 {
			if i < 60 {
				return 60 + float64(i)
			}
			return 120 + 2*float64(i%2)
		}, steady)
		v := Judge(s)
		if !v.MemoryFlat || !v.GoroutinesFlat || v.Errors != 0 || len(v.Nodes) != 2 {
			t.Fatalf("verdict %+v, want flat memory and goroutines, 0 errors, 2 nodes", v)
		}
		n := v.Nodes[0]
		if n.RSSStartMiB != 60 || n.RSSEndMiB != 122 || math.Abs(n.RSSSlopeMiBPerH) > 1 {
			t.Errorf("node-1: %+v, want RSS 60 -> 122 MiB with a slope near 0 MiB/h", n)
		}
		if v.GCPauseMaxMS != 1.5 {
			t.Errorf("GC pause max %v, want 1.5", v.GCPauseMaxMS)
		}
		if !strings.HasPrefix(v.Summary, "memory flat: RSS slope node-1 +") || !strings.Contains(v.Summary, "goroutines flat") || !strings.Contains(v.Summary, "0 errors") {
			t.Errorf("summary %q", v.Summary)
		}
	})
	t.Run("leak", func(t *testing.T) {
		// 0.1 MiB per 10 s is 36 MiB/h, and goroutines grow by one per
		// interval (360/h).
		s := soakRun(180, func(i int) float64 { return 100 + 0.1*float64(i) }, func(i int) float64 { return 40 + float64(i) })
		s.Intervals[7].Errors = 3
		s.Intervals[8].Requests = 8000 // < 90% of 1000/s x 10 s
		s.Intervals[179].Requests = 10 // the last, partial interval does not count
		v := Judge(s)
		if v.MemoryFlat || v.GoroutinesFlat || v.Errors != 3 {
			t.Fatalf("verdict %+v, want memory and goroutines not flat, 3 errors", v)
		}
		if n := v.Nodes[0]; math.Abs(n.RSSSlopeMiBPerH-36) > 0.01 || math.Abs(n.GoroutinesPerH-360) > 0.01 {
			t.Errorf("node-1 slopes %.3f MiB/h and %.3f goroutines/h, want 36 and 360", n.RSSSlopeMiBPerH, n.GoroutinesPerH)
		}
		if !v.Nodes[1].MemoryFlat || !v.Nodes[1].GoroutinesFlat {
			t.Errorf("node-2 is steady: %+v", v.Nodes[1])
		}
		if v.Behind != 1 {
			t.Errorf("%d intervals behind, want 1", v.Behind)
		}
		if !strings.HasPrefix(v.Summary, "memory NOT flat") || !strings.Contains(v.Summary, "3 errors") || !strings.Contains(v.Summary, "1 intervals fell behind") {
			t.Errorf("summary %q", v.Summary)
		}
	})
	t.Run("missed samples are skipped", func(t *testing.T) {
		s := soakRun(30, func(int) float64 { return 100 }, steady)
		s.Intervals[20].Nodes[0] = SoakNode{Name: "node-1", Error: "metrics not scraped"}
		v := Judge(s)
		if !v.MemoryFlat || !v.GoroutinesFlat || v.Nodes[0].RSSSlopeMiBPerH != 0 {
			t.Errorf("verdict %+v: a missing sample must not read as a drop to 0", v)
		}
	})
	t.Run("too short", func(t *testing.T) {
		v := Judge(soakRun(2, func(int) float64 { return 100 }, steady))
		if v.MemoryFlat || v.GoroutinesFlat {
			t.Errorf("2 samples judged flat: %+v", v)
		}
	})
	t.Run("no intervals", func(t *testing.T) {
		if v := Judge(&Soak{}); v.MemoryFlat || len(v.Nodes) != 0 {
			t.Errorf("empty soak: %+v", v)
		}
	})
}

func TestWriteSoak(t *testing.T) {
	r := sample()
	r.Profile, r.Throughput, r.Consistency, r.Recommendations = "soak", nil, nil, nil
	r.Soak = soakRun(9, func(int) float64 { return 100 }, func(int) float64 { return 40 })
	r.Soak.Changes = map[string]int{"route-added": 2, "plugin-patched": 1}
	r.Soak.Verdict = Judge(r.Soak)
	dir := t.TempDir()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Soak", "**Verdict:** memory flat", "route-added 2", "| 90 | 10000 |", "node-2 RSS MiB", "![soak_rss](soak_rss.png)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if strings.Contains(string(md), "## Throughput") {
		t.Error("a soak report shows the empty throughput table")
	}
	for _, f := range []string{"soak_rss.png", "soak_goroutines.png", "soak_latency.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	back, err := Read(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Soak == nil || len(back.Soak.Intervals) != 9 || back.Soak.Verdict.Summary != r.Soak.Verdict.Summary {
		t.Errorf("results.json round trip lost the soak section: %+v", back.Soak)
	}
}
