package run

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSoakRate(t *testing.T) {
	for _, tt := range []struct {
		capacity float64
		maxRate  int
		want     int
	}{{8151, 1500, 1500}, {2000, 1500, 1000}, {2000, 0, 1000}, {5, 0, 10}} {
		if got := soakRate(tt.capacity, tt.maxRate); got != tt.want {
			t.Errorf("soakRate(%g, %d) = %d, want %d", tt.capacity, tt.maxRate, got, tt.want)
		}
	}
}

// TestMiniSoak runs a few seconds of the soak on real node processes and
// checks the soak section has sane intervals. Nothing about speed or
// flatness is asserted.
func TestMiniSoak(t *testing.T) {
	p := Profile{Name: "mini-soak", Consumers: 50, UnknownShare: 0.1, Conns: 4,
		Warmup: 100 * time.Millisecond, Closed: 500 * time.Millisecond,
		SoakDuration: 6 * time.Second, SoakInterval: time.Second, SoakChangeEvery: 200 * time.Millisecond,
		SoakNodes: 2, SoakRateLimit: 5}
	r, out := runMini(t, p, 3)
	s := r.Soak
	if s == nil || r.Nodes != 2 || len(r.Throughput) != 0 || len(r.Consistency) != 0 {
		t.Fatalf("soak run: soak %v, %d nodes, %d throughput and %d consistency rows; want a soak section, 2 nodes, no other rows",
			s != nil, r.Nodes, len(r.Throughput), len(r.Consistency))
	}
	if s.CapacityRPS <= 0 || s.RateRPS != soakRate(s.CapacityRPS, 0) {
		t.Errorf("rate %d/s for capacity %.0f rps, want half", s.RateRPS, s.CapacityRPS)
	}
	// 6 ticks and the attack's tail; one more tick when the last answers
	// straggle past the 6 s (a loaded machine: make test runs packages
	// side by side).
	if n := len(s.Intervals); n < 4 || n > 8 {
		t.Fatalf("%d intervals over 6 s sampled every 1 s", n)
	}
	var requests, unauth, changes int
	for _, in := range s.Intervals {
		requests, unauth, changes = requests+in.Requests, unauth+in.Unauthorized, changes+in.Changes
		if in.Errors != 0 {
			t.Errorf("interval at %.1fs: %d errors, first %q", in.TS, in.Errors, in.FirstError)
		}
		if len(in.Nodes) != 2 {
			t.Fatalf("interval at %.1fs has %d nodes", in.TS, len(in.Nodes))
		}
		for _, n := range in.Nodes {
			if n.RSSBytes <= 0 || n.Goroutines <= 0 || n.HeapInuseBytes <= 0 || n.OpenFDs <= 0 || n.Error != "" {
				t.Errorf("interval at %.1fs: node sample not sane: %+v", in.TS, n)
			}
		}
	}
	if requests == 0 || unauth == 0 {
		t.Errorf("%d requests, %d with 401; want unknown keys answered 401", requests, unauth)
	}
	if changes == 0 || s.ChangeErrors != 0 || s.Changes["plugin-patched"] == 0 {
		t.Errorf("changes %v (%d in intervals), %d refused; want every kind made, none refused", s.Changes, changes, s.ChangeErrors)
	}
	if len(s.Verdict.Nodes) != 2 || s.Verdict.Summary == "" {
		t.Errorf("verdict: %+v", s.Verdict)
	}
	for _, f := range []string{"soak_rss.png", "soak_goroutines.png", "soak_latency.png", "report.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
