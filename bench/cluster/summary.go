package cluster

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// summarize turns the samples into the report: per change kind over the
// reading nodes, per node beside its own metrics, the lagging node, the
// consistency row and the recommendation.
func (r *run) summarize(before, after []scrape.Samples, elapsed time.Duration, writer int) {
	c := r.c
	var all []float64
	allMissed := 0
	byKind := map[string][]float64{}
	missedKind := map[string]int{}
	var lagBefore, lagAfter []scrape.Bucket
	rows, polls, rowNodes := 0.0, 0.0, 0
	slack := r.opts.ProbeInterval + 20*time.Millisecond
	for i := range c.Nodes {
		n := &c.Nodes[i]
		var nodeAll []float64
		missed := 0
		for _, k := range kinds {
			nodeAll = append(nodeAll, r.samples[i][k]...)
			missed += r.missed[i][k]
			if i != writer {
				byKind[k] = append(byKind[k], r.samples[i][k]...)
				missedKind[k] += r.missed[i][k]
			}
		}
		n.WindowsMS = sortedCopy(nodeAll)
		n.Window = windowOf(n.WindowsMS, missed)
		if i != writer {
			all = append(all, nodeAll...)
			allMissed += missed
		}
		if before[i] != nil && after[i] != nil {
			n.Inside, n.InsideNote = inside(before[i], after[i], elapsed, n.Window, n.WindowsMS, slack)
			if i == writer && n.Inside != nil && n.Inside.LagEvents == 0 {
				n.InsideNote = "" // the writer applies its own changes at once, not through events
			}
			if n.Inside != nil && i != writer {
				lagBefore = scrape.Add(lagBefore, before[i].Histogram(lagSeries))
				lagAfter = scrape.Add(lagAfter, after[i].Histogram(lagSeries))
				rows += n.Inside.RowsPerS
				polls += n.Inside.PollsPerS
				rowNodes++
			}
		}
	}
	for _, k := range kinds {
		if len(byKind[k])+missedKind[k] > 0 {
			c.ByChange[k] = windowOf(sortedCopy(byKind[k]), missedKind[k])
		}
	}
	c.All = windowOf(sortedCopy(all), allMissed)
	r.markLagging(writer)

	row := report.Consistency{DBUpdateFrequencyS: r.freq.Seconds(), Push: r.allPush(), WindowMS: c.All.Latency,
		Samples: c.All.Samples, Missed: c.All.Missed, ByChange: map[string]report.Latency{}, Windows: sortedCopy(all)}
	for k, w := range c.ByChange {
		row.ByChange[k] = w.Latency
	}
	if lag := scrape.Sub(lagAfter, lagBefore); len(lag) > 0 {
		ms := func(q float64) float64 { return finite(scrape.Quantile(lag, q) * 1000) }
		row.NodeLagMS = report.Latency{P50: ms(0.5), P99: ms(0.99), Max: ms(1)}
	}
	rowsPerS := -1.0
	if rowNodes > 0 {
		rowsPerS = rows / float64(rowNodes)
		row.RowsPerSecPerNode = rowsPerS
		row.PollsPerSecPerNode = polls / float64(rowNodes)
	}
	r.res.Consistency = []report.Consistency{row}
	r.res.Notes = append(r.res.Notes, fmt.Sprintf("the consistency table's row is this cluster's own setting, measured from outside: windows over the %d reading nodes, probed every %v (not every 1 ms), from the writer's answer; the Cluster section has the details", readingNodes(c, writer), r.opts.ProbeInterval))
	if c.All.Samples > 0 {
		push := r.allPush()
		c.Budgets = recommend(pollModel{freqS: r.freq.Seconds(), push: push, pushSupported: r.pushSupported(),
			window: c.All, rowsPerS: rowsPerS})
	}
	r.logf("windows over the reading nodes: p50 %.0f p99 %.0f max %.0f ms, %d samples, %d missed", c.All.P50, c.All.P99, c.All.Max, c.All.Samples, c.All.Missed)
}

// markLagging flags the reading nodes that stand out: a tenth or more of
// their changes missed, or a median window beyond the 90th percentile of
// the other readers' windows pooled (plus a probe interval and 20 ms). The
// 90th percentile, not the others' median, because with polling a healthy
// node's median wanders over the whole interval when the rounds are few;
// a node past the others' p90 at its median lags by more than chance.
func (r *run) markLagging(writer int) {
	c := r.c
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if i == writer || n.Lagging || n.Window.Samples+n.Window.Missed == 0 {
			continue
		}
		if total := n.Window.Samples + n.Window.Missed; n.Window.Missed*10 >= total {
			n.Lagging, n.LagNote = true, fmt.Sprintf("%d of %d changes unseen after %gs", n.Window.Missed, total, c.ProbeTimeoutS)
			continue
		}
		var others []float64
		for j := range c.Nodes {
			if j != i && j != writer {
				others = append(others, c.Nodes[j].WindowsMS...)
			}
		}
		if len(others) == 0 {
			continue
		}
		slices.Sort(others)
		p90 := rank(others, 0.9)
		if n.Window.P50 > p90+c.ProbeIntervalMS+20 {
			n.Lagging, n.LagNote = true, fmt.Sprintf("p50 %.0f ms beyond the other nodes' p90 of %.0f ms", n.Window.P50, p90)
		}
	}
}

func (r *run) allPush() bool {
	for _, n := range r.c.Nodes {
		if n.Push == nil || !*n.Push || (n.Database != "postgres" && n.Database != "") {
			return false
		}
	}
	return true
}

func (r *run) pushSupported() bool {
	for _, n := range r.c.Nodes {
		if n.Push != nil {
			return true
		}
	}
	return false
}

// readingNodes counts the reading nodes: probed, not the writer.
func readingNodes(c *report.Cluster, writer int) int {
	n := 0
	for i, node := range c.Nodes {
		if i != writer && node.Window.Samples+node.Window.Missed > 0 {
			n++
		}
	}
	return n
}
