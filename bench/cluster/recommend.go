package cluster

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
)

// Budgets are the staleness budgets the report gives a setting for.
var Budgets = []time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second}

// minFrequency is the smallest db_update_frequency the report proposes:
// below it, polling costs more than 10 queries per second per node on the
// datastore, and push is the better answer.
const minFrequency = 0.1

// windowOf summarizes sorted windows (ms) by nearest-rank order
// statistics, with the 95 % upper bound on p99.
func windowOf(sorted []float64, missed int) report.Window {
	w := report.Window{Samples: len(sorted), Missed: missed}
	if len(sorted) == 0 {
		return w
	}
	w.P50, w.P90, w.P99, w.Max = rank(sorted, 0.5), rank(sorted, 0.9), rank(sorted, 0.99), sorted[len(sorted)-1]
	if k := upperRank(len(sorted), 0.99, 0.95); k > 0 {
		w.P99Upper95 = sorted[k-1]
	}
	return w
}

// rank is the nearest-rank q-quantile of sorted: the ceil(q*n)-th value.
func rank(sorted []float64, q float64) float64 {
	k := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(k, 1), len(sorted))-1]
}

// upperRank returns the smallest k such that the k-th smallest of n
// samples is at least the q-quantile with probability conf: the smallest
// k with P(Binomial(n, q) <= k-1) >= conf. It returns 0 when even the
// maximum is not such a bound (n too small: below 299 for q=0.99,
// conf=0.95).
func upperRank(n int, q, conf float64) int {
	// P(X = j) for X ~ Binomial(n, q), summed from j = 0 in log space.
	cdf := 0.0
	for j := 0; j < n; j++ {
		lp := lgammaInt(n+1) - lgammaInt(j+1) - lgammaInt(n-j+1) + float64(j)*math.Log(q) + float64(n-j)*math.Log1p(-q)
		cdf += math.Exp(lp)
		if cdf >= conf {
			return j + 1
		}
	}
	return 0
}

func lgammaInt(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}

// pessimisticP99 is the p99 figure recommendations use: the 95 % upper
// bound when the samples allow one, else the maximum, and whether it was
// the bound.
func pessimisticP99(w report.Window) (float64, bool) {
	if w.P99Upper95 > 0 {
		return w.P99Upper95, true
	}
	return w.Max, false
}

// pollModel is what the recommendation knows about the cluster: the
// frequency (db_update_propagation included) and push setting measured,
// the measured window and the rows applied per second per node.
type pollModel struct {
	freqS float64
	push  bool
	// pushSupported: the nodes' db_update_push setting exists (Sluice).
	pushSupported bool
	window        report.Window
	// rowsPerS < 0 means unknown (no node metrics).
	rowsPerS float64
}

// recommend proposes db_update_frequency for each budget. The window of a
// polled change is the wait for the next poll (uniform over the interval)
// plus a fixed cost: the poll itself, applying and rebuilding, and
// db_update_propagation. The fixed cost is what the measured p99 bound
// leaves over 0.99 x the measured frequency, or the median over half of
// it, whichever is more (with push on, the push window itself stands for
// it). A budget is met by the largest frequency f
// with 0.99 f + cost <= budget.
func recommend(m pollModel) []report.Budget {
	p99, bound := pessimisticP99(m.window)
	how := "95% upper bound on p99"
	if !bound {
		how = fmt.Sprintf("max of %d samples (a 95%% bound on p99 needs at least 299)", m.window.Samples)
	}
	cost := p99 / 1000
	if !m.push {
		// The wait for the poll is uniform over the interval: its p99 is
		// 0.99 f and its median f/2. Few samples put the maximum below
		// 0.99 f, so the median's excess bounds the fixed cost too.
		cost = max(cost-0.99*m.freqS, m.window.P50/1000-0.5*m.freqS, 0)
	}
	var out []report.Budget
	for _, budget := range Budgets {
		bs := budget.Seconds()
		b := report.Budget{BudgetMS: bs * 1000}
		f := (bs - cost) / 0.99
		if m.push {
			// Polling is the fallback for a lost notification: bound the
			// whole interval, not its 99th percentile.
			f = bs - cost
		}
		f = math.Floor(f*100) / 100 // two decimals, rounded down
		if f >= minFrequency {
			b.FrequencyS = f
			b.PollsPerS = 1 / f
			b.RowsPerPoll = -1
			rows := "rows per poll unknown (no node metrics)"
			if m.rowsPerS >= 0 {
				b.RowsPerPoll = m.rowsPerS * f
				rows = fmt.Sprintf("%.2f rows/s per node at the change rate of the run, the bench's own changes included: %.2f rows per poll", m.rowsPerS, b.RowsPerPoll)
			}
			b.Text = fmt.Sprintf("for p99 staleness <= %v: db_update_frequency=%g (%.2f polls/s per node; %s). Fixed cost %.0f ms from the measured %s at db_update_frequency=%g%s",
				budget, f, b.PollsPerS, rows, cost*1000, how, m.freqS, pushNote(m.push))
		} else {
			b.PushOnly = true
			switch {
			case m.push && p99 <= bs*1000:
				b.Text = fmt.Sprintf("for staleness <= %v: only push meets it, and it does here (measured %s %.0f ms with db_update_push=on); polling alone would need db_update_frequency < %gs", budget, how, p99, minFrequency)
			case m.pushSupported:
				b.Text = fmt.Sprintf("for staleness <= %v: only push can meet it (db_update_push=on on PostgreSQL); polling would need db_update_frequency=%.3gs, below %gs, given a fixed cost of %.0f ms (%s)", budget, max(f, 0), minFrequency, cost*1000, how)
			default:
				b.Text = fmt.Sprintf("for staleness <= %v: no db_update_frequency can meet it on these nodes (fixed cost %.0f ms, %s); only push can, which Kong does not have (Sluice's db_update_push=on on PostgreSQL)", budget, cost*1000, how)
			}
		}
		if m.window.Missed > 0 {
			b.Text += fmt.Sprintf(". %d changes were never seen within the probe timeout and are not in these figures: fix the lagging node first", m.window.Missed)
		}
		out = append(out, b)
	}
	return out
}

func pushNote(push bool) string {
	if push {
		return " with db_update_push=on (the push window stands for the fixed cost; polling is the fallback when a notification is lost)"
	}
	return ""
}

// sortedCopy returns v sorted, leaving v alone.
func sortedCopy(v []float64) []float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s
}
