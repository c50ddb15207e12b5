package gcpause

import (
	"math"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestConvert checks the cumulative counts, the folding of bounds outside
// [1 µs, 1.1 s] and the midpoint sum on a hand-made runtime histogram.
func TestConvert(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{math.Inf(-1), 0, 5e-7, 1e-6, 2e-6, 1e-3, 2, math.Inf(1)},
		Counts:  []uint64{0, 3, 1, 2, 4, 1, 1},
	}
	count, sum, buckets := convert(h)
	if count != 12 {
		t.Errorf("count = %d, want 12", count)
	}
	want := map[float64]uint64{1e-6: 4, 2e-6: 6, 1e-3: 10}
	if len(buckets) != len(want) {
		t.Errorf("buckets = %v, want %v", buckets, want)
	}
	for le, n := range want {
		if buckets[le] != n {
			t.Errorf("bucket le=%g: %d, want %d (all: %v)", le, buckets[le], n, buckets)
		}
	}
	wantSum := 3*2.5e-7 + 1*7.5e-7 + 2*1.5e-6 + 4*(1e-3+2e-6)/2 + 1*(1e-3+2)/2 + 1*2.0
	if math.Abs(sum-wantSum) > 1e-12 {
		t.Errorf("sum = %g, want %g", sum, wantSum)
	}
}

// TestCollectorSeesPauses forces collections and checks the exposed
// histogram counts them, with bounds at most 25 % apart.
func TestCollectorSeesPauses(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New())
	before := pauses(t, reg)
	for range 5 {
		runtime.GC()
	}
	mf := gather(t, reg)
	h := mf.GetMetric()[0].GetHistogram()
	// Each cycle stops the world twice (sweep termination, mark
	// termination).
	if got := h.GetSampleCount() - before; got < 10 {
		t.Errorf("%d pauses counted over 5 GCs, want >= 10", got)
	}
	bs := h.GetBucket()
	if len(bs) < 40 {
		t.Fatalf("%d buckets, want the runtime's (4 per power of two from 1 µs to 1 s)", len(bs))
	}
	for i := 1; i < len(bs); i++ {
		if r := bs[i].GetUpperBound() / bs[i-1].GetUpperBound(); r > 1.25+1e-9 || bs[i].GetCumulativeCount() < bs[i-1].GetCumulativeCount() {
			t.Errorf("buckets %d and %d: bounds %g, %g (ratio %.3f), counts %d, %d", i-1, i, bs[i-1].GetUpperBound(), bs[i].GetUpperBound(), r, bs[i-1].GetCumulativeCount(), bs[i].GetCumulativeCount())
		}
	}
	if h.GetSampleSum() <= 0 {
		t.Errorf("sum %g, want > 0", h.GetSampleSum())
	}
}

func pauses(t *testing.T, reg *prometheus.Registry) uint64 {
	return gather(t, reg).GetMetric()[0].GetHistogram().GetSampleCount()
}

func gather(t *testing.T, reg *prometheus.Registry) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "sluice_gc_pauses_seconds" {
		t.Fatalf("gathered %v, want sluice_gc_pauses_seconds", mfs)
	}
	return mfs[0]
}
