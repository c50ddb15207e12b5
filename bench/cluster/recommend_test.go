package cluster

import (
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/bench/report"
)

func TestUpperRank(t *testing.T) {
	// Reference values from the exact binomial CDF (Python's math.comb).
	for _, tc := range []struct{ n, want int }{{10, 0}, {298, 0}, {299, 299}, {500, 499}, {1000, 996}} {
		if got := upperRank(tc.n, 0.99, 0.95); got != tc.want {
			t.Errorf("upperRank(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestWindowOf(t *testing.T) {
	v := make([]float64, 300)
	for i := range v {
		v[i] = float64(i + 1)
	}
	w := windowOf(v, 2)
	want := report.Window{Latency: report.Latency{P50: 150, P90: 270, P99: 297, Max: 300}, Samples: 300, Missed: 2, P99Upper95: 300}
	if w != want {
		t.Errorf("windowOf(1..300) = %+v, want %+v", w, want)
	}
	if w := windowOf(v[:10], 0); w.P99 != 10 || w.P50 != 5 || w.P99Upper95 != 0 {
		t.Errorf("windowOf(1..10) = %+v, want p50 5, p99 10 and no bound", w)
	}
}

func TestRecommend(t *testing.T) {
	poll := report.Window{Latency: report.Latency{Max: 1050}, Samples: 40}
	for _, tc := range []struct {
		name string
		m    pollModel
		want []string // per budget: a fragment of its text
		freq []float64
	}{
		{"kong polling at 1s", pollModel{freqS: 1, window: poll, rowsPerS: -1},
			[]string{"no db_update_frequency can meet it on these nodes (fixed cost 60 ms", "db_update_frequency=0.94 (1.06 polls/s", "rows per poll unknown"},
			[]float64{0, 0.94, 4.98}},
		{"sluice polling at 1s", pollModel{freqS: 1, pushSupported: true, window: poll, rowsPerS: 2},
			[]string{"only push can meet it (db_update_push=on", "2.00 rows/s per node", "9.96 rows per poll"}, []float64{0, 0.94, 4.98}},
		{"few samples: the median bounds the fixed cost", pollModel{freqS: 0.5, pushSupported: true, window: report.Window{Latency: report.Latency{P50: 264, Max: 489}, Samples: 80}, rowsPerS: 1},
			[]string{"fixed cost of 14 ms", "db_update_frequency=0.99", "db_update_frequency=5.03"}, []float64{0, 0.99, 5.03}},
		{"sluice push", pollModel{freqS: 1, push: true, pushSupported: true, window: report.Window{Latency: report.Latency{Max: 20}, Samples: 400, P99Upper95: 30}, rowsPerS: 2},
			[]string{"only push meets it, and it does here", "db_update_frequency=0.97", "db_update_frequency=4.97"}, []float64{0, 0.97, 4.97}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := recommend(tc.m)
			for i, b := range got {
				if !strings.Contains(b.Text, tc.want[i]) || b.FrequencyS != tc.freq[i] || b.PushOnly != (tc.freq[i] == 0) {
					t.Errorf("budget %v ms: %+v; want frequency %g and %q", b.BudgetMS, b, tc.freq[i], tc.want[i])
				}
			}
		})
	}
}
