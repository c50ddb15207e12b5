// Package stats holds the sampling-error arithmetic of the benchmark's
// consistency windows: distribution-free (order-statistic) confidence
// bounds on quantiles, and the Kolmogorov-Smirnov test of a sample against
// a model distribution. Samples are sorted ascending and independent.
package stats

import (
	"math"
)

// Quantile returns the q-th quantile (0 < q <= 1) of sorted by nearest
// rank: the ceil(q*n)-th smallest value. It panics on an empty sample.
func Quantile(sorted []float64, q float64) float64 {
	r := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	return sorted[min(max(r, 1), len(sorted))-1]
}

// binomCDFs returns P(Bin(n, p) <= k) for k = 0..n.
func binomCDFs(n int, p float64) []float64 {
	lgN, _ := math.Lgamma(float64(n + 1))
	lp, lq := math.Log(p), math.Log1p(-p)
	cdf := make([]float64, n+1)
	var s float64
	for k := 0; k <= n; k++ {
		lgK, _ := math.Lgamma(float64(k + 1))
		lgNK, _ := math.Lgamma(float64(n - k + 1))
		s += math.Exp(lgN - lgK - lgNK + float64(k)*lp + float64(n-k)*lq)
		cdf[k] = min(s, 1)
	}
	cdf[n] = 1
	return cdf
}

// UpperRank returns the rank r (1-based) of the smallest order statistic
// that bounds the q-th quantile from above with confidence conf:
// P(X(r) >= quantile) = P(Bin(n, q) <= r-1) >= conf. ok is false when no
// order statistic of n samples does (n too small: see MinSamples).
func UpperRank(n int, q, conf float64) (r int, ok bool) {
	cdf := binomCDFs(n, q)
	for r = 1; r <= n; r++ {
		if cdf[r-1] >= conf {
			return r, true
		}
	}
	return 0, false
}

// LowerRank returns the rank r of the largest order statistic that bounds
// the q-th quantile from below with confidence conf:
// P(X(r) <= quantile) = P(Bin(n, q) >= r) >= conf. ok is false when none
// does.
func LowerRank(n int, q, conf float64) (r int, ok bool) {
	cdf := binomCDFs(n, q)
	for r = n; r >= 1; r-- {
		if 1-cdf[r-1] >= conf {
			return r, true
		}
	}
	return 0, false
}

// MinSamples returns the fewest samples whose largest value bounds the
// q-th quantile from above with confidence conf: 299 for the p99 at 95 %.
func MinSamples(q, conf float64) int {
	return int(math.Ceil(math.Log(1-conf) / math.Log(q)))
}

// Bound is an order-statistic confidence bound; OK is false when the
// sample is too small to give one.
type Bound struct {
	Value float64
	OK    bool
}

// Upper is the one-sided upper confidence bound on the q-th quantile of
// sorted.
func Upper(sorted []float64, q, conf float64) Bound {
	r, ok := UpperRank(len(sorted), q, conf)
	if !ok {
		return Bound{}
	}
	return Bound{Value: sorted[r-1], OK: true}
}

// Lower is the one-sided lower confidence bound on the q-th quantile of
// sorted.
func Lower(sorted []float64, q, conf float64) Bound {
	r, ok := LowerRank(len(sorted), q, conf)
	if !ok {
		return Bound{}
	}
	return Bound{Value: sorted[r-1], OK: true}
}

// KS returns the Kolmogorov-Smirnov statistic D of sorted against the
// continuous CDF cdf, and the p-value of D under the hypothesis that the
// sample is drawn from cdf: the probability that an independent sample of
// the same size lies at least as far from it. The p-value is Kolmogorov's
// limit with Stephens' correction for finite n, accurate to a few per cent
// from n = 5 on at the p-values a test uses.
func KS(sorted []float64, cdf func(float64) float64) (d, p float64) {
	n := float64(len(sorted))
	if n == 0 {
		return 0, 1
	}
	for i, x := range sorted {
		f := cdf(x)
		d = max(d, float64(i+1)/n-f, f-float64(i)/n)
	}
	en := math.Sqrt(n)
	return d, kolmogorovQ((en + 0.12 + 0.11/en) * d)
}

// kolmogorovQ is P(K > lambda) for Kolmogorov's distribution K.
func kolmogorovQ(lambda float64) float64 {
	if lambda < 0.2 {
		return 1
	}
	var s float64
	sign := 1.0
	for k := 1; k <= 100; k++ {
		term := sign * math.Exp(-2*float64(k*k)*lambda*lambda)
		s += term
		if math.Abs(term) < 1e-12 {
			break
		}
		sign = -sign
	}
	return min(max(2*s, 0), 1)
}

// Uniform returns the CDF of the uniform distribution on [lo, hi].
func Uniform(lo, hi float64) func(float64) float64 {
	return func(x float64) float64 {
		return min(max((x-lo)/(hi-lo), 0), 1)
	}
}
