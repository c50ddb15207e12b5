package cluster

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

func parse(t *testing.T, text string) scrape.Samples {
	t.Helper()
	s, err := scrape.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lagText is a Sluice node's lag histogram with n observations at or
// below each bound, and its poll and event counters.
func lagText(b05, b1, b25, b5, inf, polls, applied int) string {
	return strings.NewReplacer("B05", strconv.Itoa(b05), "B1", strconv.Itoa(b1), "B25", strconv.Itoa(b25), "B5", strconv.Itoa(b5), "INF", strconv.Itoa(inf), "POLLS", strconv.Itoa(polls), "APPLIED", strconv.Itoa(applied)).Replace(`
sluice_invalidation_lag_seconds_bucket{le="0.05"} B05
sluice_invalidation_lag_seconds_bucket{le="0.1"} B1
sluice_invalidation_lag_seconds_bucket{le="0.25"} B25
sluice_invalidation_lag_seconds_bucket{le="0.5"} B5
sluice_invalidation_lag_seconds_bucket{le="+Inf"} INF
sluice_cluster_poll_duration_seconds_count POLLS
sluice_cluster_events_applied_total APPLIED
`)
}

func TestInside(t *testing.T) {
	before := parse(t, lagText(0, 0, 0, 0, 0, 100, 50))
	// 40 events over 10 s: half within 250 ms, all within 500 ms.
	after := parse(t, lagText(4, 8, 20, 40, 40, 120, 90))
	uniform := make([]float64, 40) // windows spread evenly over (0, 500] ms
	for i := range uniform {
		uniform[i] = float64(i+1) * 12.5
	}
	late := make([]float64, 40) // every window a second later
	for i := range late {
		late[i] = uniform[i] + 1000
	}
	for _, tc := range []struct {
		name    string
		windows []float64
		agrees  bool
	}{
		{"windows like the lag", uniform, true},
		{"windows a second later", late, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, note := inside(before, after, 10*time.Second, windowOf(tc.windows, 0), tc.windows, 25*time.Millisecond)
			if in == nil || note != "" {
				t.Fatalf("inside = %+v, %q", in, note)
			}
			if in.LagEvents != 40 || in.PollsPerS != 2 || in.RowsPerS != 4 || in.LagBucketMS != [2]float64{100, 250} {
				t.Errorf("inside = %+v; want 40 events, 2 polls/s, 4 rows/s, p50 in (100, 250] ms", in)
			}
			if in.Agrees == nil || *in.Agrees != tc.agrees {
				t.Errorf("agrees = %v (D=%.2f, bound %.2f), want %v", in.Agrees, in.KSD, in.KSCritical, tc.agrees)
			}
		})
	}
	kong := parse(t, "kong_datastore_reachable 1\nkong_nginx_connections_total{state=\"active\"} 3\n")
	if in, note := inside(kong, kong, time.Second, report.Window{}, nil, 0); in != nil || !strings.Contains(note, "Kong's prometheus plugin exposes no invalidation lag") {
		t.Errorf("Kong's metrics: %+v, %q", in, note)
	}
	other := parse(t, "process_cpu_seconds_total 3\n")
	if in, note := inside(other, other, time.Second, report.Window{}, nil, 0); in != nil || !strings.Contains(note, "no sluice_invalidation_lag_seconds") {
		t.Errorf("other metrics: %+v, %q", in, note)
	}
}
