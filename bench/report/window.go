package report

import (
	"fmt"
	"math"
	"slices"

	"github.com/sluice-gw/sluice/bench/scrape"
	"github.com/sluice-gw/sluice/bench/stats"
)

// Confidence of every interval and bound the report prints.
const Confidence = 0.95

// MinP99Samples is the fewest windows from which the report prints a p99:
// below it, the nearest-rank p99 is one of the few largest values and says
// little; the max is shown instead.
const MinP99Samples = 100

// ModelAlpha is the significance level at which the windows are flagged as
// farther from the uniform poll model than sampling error explains.
const ModelAlpha = 0.01

// Summary summarizes a sample of windows (ms) with its sampling error.
// Percentiles are nearest-rank.
type Summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	// P50Low and P50High are the 95 % order-statistic interval of the
	// median (absent when N is too small to give one).
	P50Low  *float64 `json:"p50_low,omitempty"`
	P50High *float64 `json:"p50_high,omitempty"`
	// P99 is absent below MinP99Samples windows.
	P99 *float64 `json:"p99,omitempty"`
	// P99Upper and P99Lower are one-sided 95 % order-statistic bounds on
	// the p99: an upper bound needs 299 windows (then it is the max); a
	// lower one exists from a few windows on (at first the min).
	P99Upper *float64 `json:"p99_upper,omitempty"`
	P99Lower *float64 `json:"p99_lower,omitempty"`
	Max      float64  `json:"max"`
}

// Summarize returns the summary of windows (ms, any order).
func Summarize(windows []float64) Summary {
	s := slices.Sorted(slices.Values(windows))
	if len(s) == 0 {
		return Summary{}
	}
	w := Summary{N: len(s), P50: stats.Quantile(s, 0.5), Max: s[len(s)-1]}
	// Two-sided: each side at (1+Confidence)/2.
	side := (1 + Confidence) / 2
	if lo, hi := stats.Lower(s, 0.5, side), stats.Upper(s, 0.5, side); lo.OK && hi.OK {
		w.P50Low, w.P50High = &lo.Value, &hi.Value
	}
	if len(s) >= MinP99Samples {
		p99 := stats.Quantile(s, 0.99)
		w.P99 = &p99
	}
	if b := stats.Upper(s, 0.99, Confidence); b.OK {
		w.P99Upper = &b.Value
	}
	if b := stats.Lower(s, 0.99, Confidence); b.OK {
		w.P99Lower = &b.Value
	}
	return w
}

// Model is the poll model of a setting with push off: a change lands at a
// time independent of the nodes' polls, so the window is uniform on
// [0, f] plus the time to apply it.
type Model struct {
	// ApplyMS is the model's shift: the probed nodes' mean poll query and
	// mean snapshot rebuild (their own metrics) plus half the probe
	// interval (the probe's resolution).
	ApplyMS float64 `json:"apply_ms"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	// KSD and KSP are the Kolmogorov-Smirnov statistic of the windows
	// against the model and its p-value.
	KSD float64 `json:"ks_d"`
	KSP float64 `json:"ks_p"`
	// Differs is KSP < ModelAlpha: the windows differ from the model by
	// more than sampling error.
	Differs bool `json:"differs"`
}

// UniformModel checks windows (ms, any order) of a setting polling every
// freqMS against uniform on [applyMS, applyMS + freqMS].
func UniformModel(windows []float64, freqMS, applyMS float64) *Model {
	s := slices.Sorted(slices.Values(windows))
	d, p := stats.KS(s, stats.Uniform(applyMS, applyMS+freqMS))
	return &Model{ApplyMS: applyMS, P50: applyMS + freqMS/2, P99: applyMS + 0.99*freqMS, KSD: d, KSP: p, Differs: len(s) > 0 && p < ModelAlpha}
}

// NodeLag is the inside view: the nodes' own sluice_invalidation_lag_seconds
// (commit to applied, datastore clock) over a setting's changes, quantiles
// interpolated inside the histogram's buckets.
type NodeLag struct {
	// Count is the number of observations (events applied, several per
	// change and node).
	Count float64 `json:"count"`
	P50   float64 `json:"p50"`
	// P99 is absent below MinP99Samples observations.
	P99 *float64 `json:"p99,omitempty"`
	// BucketMS is the width of the bucket holding the p50, the
	// resolution of the quantiles.
	BucketMS float64 `json:"bucket_ms"`
}

// NodeLagFrom summarizes the lag histogram's observations between two
// scrapes (scrape.Sub of the cumulative buckets, summed over the nodes).
func NodeLagFrom(lag []scrape.Bucket) NodeLag {
	var l NodeLag
	if len(lag) == 0 || lag[len(lag)-1].Count <= 0 {
		return l
	}
	l.Count = lag[len(lag)-1].Count
	l.P50 = scrape.Quantile(lag, 0.5) * 1000
	if l.Count >= MinP99Samples {
		p99 := scrape.Quantile(lag, 0.99) * 1000
		l.P99 = &p99
	}
	for i, bk := range lag {
		if bk.Count >= l.Count/2 && !math.IsInf(bk.LE, 1) {
			lower := 0.0
			if i > 0 {
				lower = lag[i-1].LE
			}
			l.BucketMS = math.Round((bk.LE-lower)*1e6) / 1e3
			break
		}
	}
	return l
}

// p99Text is the p99 column: the value, or why there is none.
func (w Summary) p99Text() string {
	if w.P99 == nil {
		return fmt.Sprintf("- (n<%d)", MinP99Samples)
	}
	return fmtMS(*w.P99)
}

// p99UpperText is the p99's upper-bound column.
func (w Summary) p99UpperText() string {
	if w.P99Upper == nil {
		return fmt.Sprintf("- (n<%d)", stats.MinSamples(0.99, Confidence))
	}
	return fmtMS(*w.P99Upper)
}

// p50Text is the median with its interval.
func (w Summary) p50Text() string {
	if w.P50Low == nil {
		return fmtMS(w.P50)
	}
	return fmt.Sprintf("%s [%s-%s]", fmtMS(w.P50), fmtMS(*w.P50Low), fmtMS(*w.P50High))
}
