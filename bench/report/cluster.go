package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// Cluster is what `sluice bench --cluster` measured on a running cluster
// it does not own (bench/cluster). Results.Consistency then holds one row
// for the cluster's own setting, so the window table and CDF are the local
// bench's.
type Cluster struct {
	// File is the cluster file; RunID names the run's canary entities.
	File  string `json:"file"`
	RunID string `json:"run_id"`
	// LoadBalancer is the cluster's entry point (load only).
	LoadBalancer string        `json:"load_balancer"`
	Nodes        []ClusterNode `json:"nodes"`
	// Writer is the node whose Admin API took the canary writes ("" when
	// none did, then NotProbed says why).
	Writer    string `json:"writer"`
	NotProbed string `json:"not_probed,omitempty"`
	Rounds    int    `json:"rounds"`
	// ProbeIntervalMS is the pause between two probes of one change on one
	// node; MaxProbeRPSPerNode the ceiling it implies (4 changes in flight).
	ProbeIntervalMS    float64 `json:"probe_interval_ms"`
	ProbeTimeoutS      float64 `json:"probe_timeout_s"`
	MaxProbeRPSPerNode float64 `json:"max_probe_rps_per_node"`
	// ProbeRequests is every probe sent, over ProbeSeconds of probing.
	ProbeRequests int     `json:"probe_requests"`
	ProbeSeconds  float64 `json:"probe_s"`
	// ByChange holds the windows over every reading node, per change kind.
	ByChange map[string]Window `json:"by_change"`
	// All is ByChange merged.
	All     Window       `json:"all"`
	Load    *ClusterLoad `json:"load,omitempty"`
	Budgets []Budget     `json:"budgets"`
	Cleanup Cleanup      `json:"cleanup"`
}

// Window is a set of windows (ms) with their sample count and misses.
// P99Upper95 is the 95 % order-statistic upper bound on p99 (0 when the
// samples are too few for one: fewer than 299).
type Window struct {
	Latency
	Samples    int     `json:"samples"`
	Missed     int     `json:"missed"`
	P99Upper95 float64 `json:"p99_upper95_ms"`
}

// ClusterNode is one node of the cluster file, as discovered and measured.
type ClusterNode struct {
	Name    string `json:"name"`
	Admin   string `json:"admin"`
	Proxy   string `json:"proxy"`
	Metrics string `json:"metrics,omitempty"`
	// Product is "sluice" or "kong" (from GET /'s tagline), Version and
	// Database as GET / reports them.
	Product  string `json:"product"`
	Version  string `json:"version"`
	Database string `json:"database"`
	// DBUpdateFrequencyS and DBUpdatePropagationS are the node's settings
	// (0 when GET / did not say); Push is db_update_push where it takes
	// effect, on PostgreSQL (nil: the node has no such setting, as Kong).
	DBUpdateFrequencyS   float64 `json:"db_update_frequency_s"`
	DBUpdatePropagationS float64 `json:"db_update_propagation_s"`
	Push                 *bool   `json:"db_update_push,omitempty"`
	// Probe says whether consistency was probed here, or why not.
	Probe  string `json:"probe"`
	Writer bool   `json:"writer"`
	// Window is this node's windows over every change kind.
	Window    Window    `json:"window"`
	WindowsMS []float64 `json:"windows_ms,omitempty"`
	// Inside is the node's own view (nil when it exposes none; InsideNote
	// says why).
	Inside     *Inside `json:"inside,omitempty"`
	InsideNote string  `json:"inside_note,omitempty"`
	// Lagging marks the node that stands out; LagNote says how.
	Lagging bool   `json:"lagging"`
	LagNote string `json:"lag_note,omitempty"`
}

// Inside is a node's own figures over the probing, from its metrics.
type Inside struct {
	// LagMS is p50/p90/p99 of sluice_invalidation_lag_seconds observed in
	// the probing (bucket interpolation), over LagEvents events.
	LagMS     Latency `json:"lag_ms"`
	LagEvents float64 `json:"lag_events"`
	// LagBucketMS is the bucket [lower, upper] holding the lag's p50.
	LagBucketMS [2]float64 `json:"lag_p50_bucket_ms"`
	PollsPerS   float64    `json:"polls_per_s"`
	RowsPerS    float64    `json:"rows_per_s"`
	// PollErrorsPerS are failed polls (sluice_cluster_poll_errors_total).
	PollErrorsPerS float64 `json:"poll_errors_per_s"`
	// KSD is the largest gap between the probed windows' CDF and the lag
	// histogram's CDF at the histogram's bucket bounds (each bound shifted
	// by one probe interval and the write's return trip in the probes'
	// favour); KSCritical is the two-sample Kolmogorov-Smirnov bound at
	// 95 % for the number of rounds (the changes of one round wait for the
	// same poll: they are one sample, not four). Agrees is KSD <= KSCritical; nil
	// when either side has no sample.
	KSD        float64 `json:"ks_d,omitempty"`
	KSCritical float64 `json:"ks_critical,omitempty"`
	Agrees     *bool   `json:"agrees,omitempty"`
}

// Budget is the recommendation for one staleness budget.
type Budget struct {
	BudgetMS float64 `json:"budget_ms"`
	// FrequencyS is the proposed db_update_frequency (0: polling cannot
	// meet the budget, PushOnly then says only push can).
	FrequencyS  float64 `json:"db_update_frequency_s"`
	PushOnly    bool    `json:"push_only"`
	PollsPerS   float64 `json:"polls_per_s_per_node"`
	RowsPerPoll float64 `json:"rows_per_poll"`
	Text        string  `json:"text"`
}

// ClusterLoad is the optional open-loop run through the load balancer.
type ClusterLoad struct {
	URL       string  `json:"url"`
	Rate      int     `json:"rate_rps"`
	DurationS float64 `json:"duration_s"`
	Requests  int     `json:"requests"`
	// Late counts requests the client could not send on time (it had
	// MaxInFlight outstanding): their latency still counts from the
	// intended send time.
	Late int `json:"late"`
	// LatencyMS is measured from each request's intended send time.
	LatencyMS Latency        `json:"latency_ms"`
	ByStatus  map[string]int `json:"by_status"`
	Errors    int            `json:"errors"`
}

// Cleanup is what the run deleted, and what it could not.
type Cleanup struct {
	// Stale counts canary entities of earlier runs deleted at the start.
	Stale   int      `json:"stale"`
	Deleted int      `json:"deleted"`
	Left    int      `json:"left"`
	Errors  []string `json:"errors,omitempty"`
}

func clusterMarkdown(c *Cluster, nodesPlot bool) string {
	var b strings.Builder
	b.WriteString("\n## Cluster\n\n")
	fmt.Fprintf(&b, "Cluster file `%s`, run `%s`, load balancer %s.\n\n", c.File, c.RunID, dash(c.LoadBalancer))
	b.WriteString("| node | product | version | database | db_update_frequency | propagation | push | consistency probed |\n|---|---|---|---|---|---|---|---|\n")
	for _, n := range c.Nodes {
		push := "-"
		if n.Push != nil {
			push = onOff(*n.Push)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %gs | %gs | %s | %s |\n", n.Name, dash(n.Product), dash(n.Version), dash(n.Database),
			n.DBUpdateFrequencyS, n.DBUpdatePropagationS, push, n.Probe)
	}
	if c.NotProbed != "" {
		fmt.Fprintf(&b, "\nConsistency was not probed: %s\n", c.NotProbed)
	} else {
		fmt.Fprintf(&b, "\nCanary writes on %s, %d rounds of 4 changes; probes every %g ms per change and node (at most %.0f requests/s per node while a change is unseen; %d probes in %.0f s, %.1f/s over all nodes), a change unseen after %gs counts as missed.\n",
			c.Writer, c.Rounds, c.ProbeIntervalMS, c.MaxProbeRPSPerNode, c.ProbeRequests, c.ProbeSeconds, safeDiv(float64(c.ProbeRequests), c.ProbeSeconds), c.ProbeTimeoutS)
		b.WriteString("\n### Window per change kind (reading nodes)\n\n")
		b.WriteString("| change | samples | missed | p50 ms | p90 ms | p99 ms | max ms | p99 upper 95% ms |\n|---|---|---|---|---|---|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(c.ByChange)) {
			b.WriteString(windowRow(k, c.ByChange[k]))
		}
		b.WriteString(windowRow("all", c.All))
		b.WriteString("\n### Window per node, beside the node's own figures\n\n")
		b.WriteString("| node | samples | missed | p50 ms | p90 ms | p99 ms | max ms | node lag p50 ms | p90 ms | p99 ms | lag events | polls/s | rows/s | agrees | stands out |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, n := range c.Nodes {
			name := n.Name
			if n.Writer {
				name += " (writer)"
			}
			lag := "- | - | - | - | - | -"
			if in := n.Inside; in != nil {
				lag = fmt.Sprintf("%s | %s | %s | %.0f | %.2f | %.2f", fmtMS(in.LagMS.P50), fmtMS(in.LagMS.P90), fmtMS(in.LagMS.P99), in.LagEvents, in.PollsPerS, in.RowsPerS)
			}
			agrees := "-"
			if in := n.Inside; in != nil && in.Agrees != nil {
				agrees = fmt.Sprintf("%s (D=%.2f, bound %.2f)", map[bool]string{true: "yes", false: "NO"}[*in.Agrees], in.KSD, in.KSCritical)
			}
			out := "-"
			if n.Lagging {
				out = "**LAGGING**: " + n.LagNote
			}
			w := n.Window
			probed := fmt.Sprintf("%d | %d | %s | %s | %s | %s", w.Samples, w.Missed, fmtMS(w.P50), fmtMS(w.P90), fmtMS(w.P99), fmtMS(w.Max))
			switch {
			case w.Samples+w.Missed == 0:
				probed = "- | - | - | - | - | -"
			case w.Samples == 0:
				probed = fmt.Sprintf("0 | %d | - | - | - | -", w.Missed)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, probed, lag, agrees, out)
		}
		if nodesPlot {
			b.WriteString("\nThe window CDF per node is in cluster_nodes_cdf.png.\n")
		}
	}
	var notes []string
	for _, n := range c.Nodes {
		if n.InsideNote != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", n.Name, n.InsideNote))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nInside view:\n\n")
		for _, s := range notes {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if l := c.Load; l != nil {
		b.WriteString("\n### Load through the load balancer\n\n")
		fmt.Fprintf(&b, "%s at %d requests/s for %gs, open loop; latency from each request's intended send time (%d sent late by the client).\n\n", l.URL, l.Rate, l.DurationS, l.Late)
		b.WriteString("| requests | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | by status |\n|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %s | %s | %s |\n", l.Requests, l.Errors, fmtMS(l.LatencyMS.P50), fmtMS(l.LatencyMS.P90),
			fmtMS(l.LatencyMS.P99), fmtMS(l.LatencyMS.P999), fmtMS(l.LatencyMS.Max), statusList(l.ByStatus))
	}
	fmt.Fprintf(&b, "\nCanary cleanup: %d deleted at the end, %d left", c.Cleanup.Deleted, c.Cleanup.Left)
	if c.Cleanup.Stale > 0 {
		fmt.Fprintf(&b, ", %d left by earlier runs deleted first", c.Cleanup.Stale)
	}
	b.WriteString(".\n")
	for _, e := range c.Cleanup.Errors {
		fmt.Fprintf(&b, "- cleanup error: %s\n", e)
	}
	return b.String()
}

func windowRow(name string, w Window) string {
	bound := "- (n < 299)"
	if w.P99Upper95 > 0 {
		bound = fmtMS(w.P99Upper95)
	}
	if w.Samples == 0 {
		return fmt.Sprintf("| %s | 0 | %d | - | - | - | - | - |\n", name, w.Missed)
	}
	return fmt.Sprintf("| %s | %d | %d | %s | %s | %s | %s | %s |\n", name, w.Samples, w.Missed, fmtMS(w.P50), fmtMS(w.P90), fmtMS(w.P99), fmtMS(w.Max), bound)
}

func statusList(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return dash(strings.Join(parts, ", "))
}

func safeDiv(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// clusterNodesCDF draws one window CDF per probed node, so that a lagging
// node stands out.
func clusterNodesCDF(r *Results) (*plot.Plot, error) {
	if r.Cluster == nil || r.Cluster.NotProbed != "" {
		return nil, nil
	}
	p := newPlot("Consistency window CDF per node", "window (ms) from the canary write to visible on the node", "fraction of changes visible")
	for i, n := range r.Cluster.Nodes {
		w := slices.Clone(n.WindowsMS)
		slices.Sort(w)
		total := len(w) + n.Window.Missed
		if total == 0 {
			continue
		}
		pts := plotter.XYs{{X: 0, Y: 0}}
		for j, v := range w {
			pts = append(pts, plotter.XY{X: v, Y: float64(j+1) / float64(total)})
		}
		if err := addLine(p, i, n.Name, pts); err != nil {
			return nil, err
		}
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Y.Max = 1.02
	return p, nil
}
