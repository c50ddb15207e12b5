package load

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one", []float64{7}, 99, 7},
		{"median of 100", hundred, 50, 50},
		{"p99 of 100", hundred, 99, 99},
		{"p99.9 of 100 is the max", hundred, 99.9, 100},
		{"p0 is the min", hundred, 0, 1},
		{"max", hundred, 100, 100},
		{"odd count median", []float64{1, 2, 3}, 50, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p=%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

// TestMerge: pooled runs give the percentiles of all their samples, not
// an average of their percentiles: one run's tail stays a tail.
func TestMerge(t *testing.T) {
	calm := make([]float64, 99)
	for i := range calm {
		calm[i] = 1
	}
	a := summarize(calm, 0, time.Second)
	b := summarize([]float64{50}, 1, 2*time.Second)
	b.FirstError = "status 502"
	m := Merge(a, b)
	if m.Requests != 100 || m.Errors != 1 || m.Duration != 3*time.Second || m.FirstError != "status 502" {
		t.Fatalf("merged %+v: want 100 requests, 1 error, 3 s, the first error kept", m)
	}
	if m.Latency.P99 != 1 || m.Latency.Max != 50 || len(m.Samples) != 100 {
		t.Errorf("merged latency %+v over %d samples: want p99 1 ms (99 of 100 at 1 ms) and max 50 ms", m.Latency, len(m.Samples))
	}
	if b.Latency.P99 != 50 {
		t.Errorf("b alone p99 = %v, want 50", b.Latency.P99)
	}
}

// TestClosedAndOpen drives a real httptest upstream; one status in four is
// not OK so the error count is checked too.
func TestClosedAndOpen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Bad") == "1" {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	// Durations leave room for a loaded machine under -race: the first
	// answers must arrive before the run ends.
	o := Options{URL: srv.URL, Duration: time.Second, Conns: 2, Rate: 100}
	c := Closed(context.Background(), o)
	if c.Requests == 0 || c.Errors != 0 || c.RPS <= 0 || c.Latency.P50 <= 0 || c.Latency.Max < c.Latency.P99 {
		t.Errorf("closed loop summary %+v: want requests, no errors, ordered percentiles", c)
	}
	o.Header = func(_ *rand.Rand) http.Header { return http.Header{"X-Bad": {"1"}} }
	op := Open(context.Background(), o)
	if op.Requests < 50 || op.Errors != op.Requests {
		t.Errorf("open loop at 100/s for 1s: %d requests, %d errors; want ~100, all errors (418)", op.Requests, op.Errors)
	}
}
