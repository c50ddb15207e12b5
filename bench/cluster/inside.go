package cluster

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// Series read from a Sluice node's /metrics.
const (
	lagSeries     = "sluice_invalidation_lag_seconds"
	pollsSeries   = "sluice_cluster_poll_duration_seconds_count"
	appliedSeries = "sluice_cluster_events_applied_total"
	pollErrSeries = "sluice_cluster_poll_errors_total"
)

// scrapeMetrics fetches and parses a node's metrics URL.
func scrapeMetrics(ctx context.Context, client *http.Client, url string) (scrape.Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return scrape.Parse(resp.Body)
}

// inside compares what a node's own metrics say over the probing (before
// and after, elapsed apart) with the probed windows of that node. It
// returns nil and a note when the node exposes no invalidation figures.
// sorted are the node's probed windows (ms); slack is how far a window may
// differ from the lag it stands for: one probe interval (the probe that
// sees the change is sent up to one interval after it applies) plus the
// write's return trip (the lag starts at the commit, the window when the
// writer answered).
func inside(before, after scrape.Samples, elapsed time.Duration, w report.Window, sorted []float64, slack time.Duration) (*report.Inside, string) {
	lag := scrape.Sub(after.Histogram(lagSeries), before.Histogram(lagSeries))
	if len(lag) == 0 {
		if hasPrefix(after, "kong_") {
			return nil, "Kong's prometheus plugin exposes no invalidation lag and no poll counts: only the probed windows stand"
		}
		return nil, "its metrics carry no " + lagSeries + ": only the probed windows stand"
	}
	in := &report.Inside{
		LagEvents:      lag[len(lag)-1].Count,
		PollsPerS:      (after.Sum(pollsSeries) - before.Sum(pollsSeries)) / elapsed.Seconds(),
		RowsPerS:       (after.Sum(appliedSeries) - before.Sum(appliedSeries)) / elapsed.Seconds(),
		PollErrorsPerS: (after.Sum(pollErrSeries) - before.Sum(pollErrSeries)) / elapsed.Seconds(),
	}
	if in.PollErrorsPerS > 0 {
		return in, fmt.Sprintf("%.2f of its %.2f polls/s failed: it cannot read cluster events from the datastore", in.PollErrorsPerS, in.PollsPerS)
	}
	if in.LagEvents == 0 {
		return in, "applied no invalidation event during the measurement"
	}
	ms := func(q float64) float64 { return finite(scrape.Quantile(lag, q) * 1000) }
	in.LagMS = report.Latency{P50: ms(0.5), P90: ms(0.9), P99: ms(0.99), Max: ms(1)}
	in.LagBucketMS = bucketOf(lag, 0.5)
	if w.Samples > 0 {
		in.KSD = ksDistance(sorted, w.Missed, lag, float64(slack)/1e6)
		// The 4 changes of a round wait for the same poll, and a poll's
		// events are applied together: the samples on either side are
		// rounds, not changes.
		rounds := max(1, (w.Samples+w.Missed)/len(kinds))
		in.KSCritical = 1.36 * math.Sqrt(2/float64(rounds))
		ok := in.KSD <= in.KSCritical
		in.Agrees = &ok
	}
	return in, ""
}

// ksDistance is the Kolmogorov-Smirnov distance between the probed
// windows (sorted ms, plus missed ones, which lie beyond every bound) and
// the lag histogram, evaluated at the histogram's finite bucket bounds
// only (its resolution), each bound shifted by slack ms in the probes'
// favour.
func ksDistance(sorted []float64, missed int, lag []scrape.Bucket, slack float64) float64 {
	n := float64(len(sorted) + missed)
	total := lag[len(lag)-1].Count
	below := func(x float64) float64 {
		k, _ := slices.BinarySearch(sorted, math.Nextafter(x, math.Inf(1)))
		return float64(k) / n
	}
	d := 0.0
	for _, b := range lag {
		if math.IsInf(b.LE, 1) {
			continue
		}
		le, fh := b.LE*1000, b.Count/total
		d = max(d, fh-below(le+slack), below(le-slack)-fh)
	}
	return d
}

// bucketOf returns the bounds (ms) of the bucket holding quantile q.
func bucketOf(b []scrape.Bucket, q float64) [2]float64 {
	rank := q * b[len(b)-1].Count
	lower := 0.0
	for _, bk := range b {
		if bk.Count >= rank {
			upper := bk.LE
			if math.IsInf(upper, 1) {
				upper = lower
			}
			return [2]float64{lower * 1000, upper * 1000}
		}
		lower = bk.LE
	}
	return [2]float64{lower * 1000, lower * 1000}
}

func hasPrefix(s scrape.Samples, p string) bool {
	for k := range s {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
