package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestQuantileNearestRank(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tt := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0.11, 2}, {1, 10}} {
		if got := Quantile(s, tt.q); got != tt.want {
			t.Errorf("Quantile(1..10, %g) = %g, want %g", tt.q, got, tt.want)
		}
	}
}

// TestRanksMatchTables checks the order-statistic ranks against published
// values: the 95 % interval of the median of 100 samples is X(40)..X(61)
// (e.g. Conover, Practical Nonparametric Statistics, table A3), and the
// largest of n samples bounds the p99 at 95 % from n = 299 on.
func TestRanksMatchTables(t *testing.T) {
	if lo, ok := LowerRank(100, 0.5, 0.975); !ok || lo != 40 {
		t.Errorf("LowerRank(100, 0.5, 0.975) = %d, %v; want 40", lo, ok)
	}
	if hi, ok := UpperRank(100, 0.5, 0.975); !ok || hi != 61 {
		t.Errorf("UpperRank(100, 0.5, 0.975) = %d, %v; want 61", hi, ok)
	}
	if n := MinSamples(0.99, 0.95); n != 299 {
		t.Errorf("MinSamples(0.99, 0.95) = %d, want 299", n)
	}
	if r, ok := UpperRank(299, 0.99, 0.95); !ok || r != 299 {
		t.Errorf("UpperRank(299, 0.99, 0.95) = %d, %v; want 299 (the max)", r, ok)
	}
	if r, ok := UpperRank(298, 0.99, 0.95); ok {
		t.Errorf("UpperRank(298, 0.99, 0.95) = %d; want no bound", r)
	}
	if r, ok := UpperRank(500, 0.99, 0.95); !ok || r != 499 {
		t.Errorf("UpperRank(500, 0.99, 0.95) = %d, %v; want 499", r, ok)
	}
	if r, ok := UpperRank(10, 0.99, 0.95); ok {
		t.Errorf("UpperRank(10, 0.99, 0.95) = %d; want no bound", r)
	}
	if r, ok := UpperRank(1000, 0.99, 0.95); !ok || r != 996 {
		t.Errorf("UpperRank(1000, 0.99, 0.95) = %d, %v; want 996", r, ok)
	}
}

// TestBoundsCover draws uniform samples and checks that the bounds hold
// the true quantile at least as often as they claim (and not much more).
func TestBoundsCover(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const reps = 2000
	var upperHeld, lowerHeld, medianHeld int
	for range reps {
		s := make([]float64, 400)
		for i := range s {
			s[i] = rng.Float64()
		}
		slices.Sort(s)
		if b := Upper(s, 0.99, 0.95); b.OK && b.Value >= 0.99 {
			upperHeld++
		}
		if b := Lower(s, 0.99, 0.95); b.OK && b.Value <= 0.99 {
			lowerHeld++
		}
		if lo, hi := Lower(s, 0.5, 0.975), Upper(s, 0.5, 0.975); lo.Value <= 0.5 && hi.Value >= 0.5 {
			medianHeld++
		}
	}
	for name, held := range map[string]int{"p99 upper": upperHeld, "p99 lower": lowerHeld, "median interval": medianHeld} {
		if r := float64(held) / reps; r < 0.94 || r > 0.995 {
			t.Errorf("%s held the true quantile in %.3f of samples, want about 0.95", name, r)
		}
	}
}

// TestKSSizeAndPower checks the p-value's calibration by simulation: under
// the model, p < 0.05 in about 5 % of samples; a sample with a quarter of
// its values at 0 (the cold-cache windows of issue 15) is rejected at 0.001
// from 100 samples on.
func TestKSSizeAndPower(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	u := Uniform(0, 1)
	const reps = 2000
	rejected := 0
	for range reps {
		s := make([]float64, 100)
		for i := range s {
			s[i] = rng.Float64()
		}
		slices.Sort(s)
		if _, p := KS(s, u); p < 0.05 {
			rejected++
		}
	}
	if r := float64(rejected) / reps; r < 0.035 || r > 0.065 {
		t.Errorf("KS rejected %.3f of samples drawn from the model at 0.05, want about 0.05", r)
	}
	for range 20 {
		s := make([]float64, 100)
		for i := range s {
			if i%4 != 0 {
				s[i] = rng.Float64()
			}
		}
		slices.Sort(s)
		if d, p := KS(s, u); p >= 0.001 {
			t.Fatalf("KS of a sample with 25 %% zeros: D=%.3f p=%.4f, want p < 0.001", d, p)
		}
	}
}

func TestKSKnownValues(t *testing.T) {
	// One value at the model's median: D = 0.5.
	if d, _ := KS([]float64{0.5}, Uniform(0, 1)); d != 0.5 {
		t.Errorf("D = %g, want 0.5", d)
	}
	// Kolmogorov's limit: P(K > 1.36) = 0.049, P(K > 1.63) = 0.0098.
	for _, tt := range []struct{ lambda, want float64 }{{1.36, 0.0494}, {1.63, 0.0098}, {0.5, 0.9639}} {
		if got := kolmogorovQ(tt.lambda); math.Abs(got-tt.want) > 0.0005 {
			t.Errorf("kolmogorovQ(%g) = %.4f, want %.4f", tt.lambda, got, tt.want)
		}
	}
}
