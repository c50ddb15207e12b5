package report

import (
	"encoding/base64"
	"fmt"
	"html"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/bench/stats"
)

// Markdown renders the report; plots are PNG file names beside it.
func Markdown(r *Results, plots []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sluice bench: %s profile, %s, %d nodes\n\n", r.Profile, r.Database, r.Nodes)
	fmt.Fprintf(&b, "Started %s, took %.0f s. Machine: %s, %d CPUs, %s, %s. Command: `%s`.\n\n",
		r.StartedAt.Format("2006-01-02 15:04:05 MST"), r.DurationS, r.Machine.CPUModel, r.Machine.NProc, r.Machine.OS, r.Machine.GoVersion, r.Command)
	if r.Soak != nil {
		b.WriteString(soakMarkdown(r.Soak))
	}
	if r.Scale != nil {
		b.WriteString(scaleMarkdown(r.Scale))
	}
	if len(r.Throughput) > 0 {
		b.WriteString(throughputTable(r))
		b.WriteString("\n")
	}
	if len(r.Consistency) > 0 {
		b.WriteString(consistencyTable(r))
	}
	if r.Storm != nil {
		b.WriteString(stormTable(r.Storm))
	}
	if r.Cluster != nil {
		b.WriteString(clusterMarkdown(r.Cluster, slices.Contains(plots, "cluster_nodes_cdf.png")))
	}
	if len(r.Recommendations) > 0 {
		b.WriteString("\n## Recommendations\n\n")
		for _, s := range r.Recommendations {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, s := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if len(plots) > 0 {
		b.WriteString("\n## Plots\n\n")
		for _, p := range plots {
			fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(p, ".png"), p)
		}
	}
	return b.String()
}

func throughputTable(r *Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Throughput (%d consumers, key-auth + rate-limiting on the gateway)\n\n", r.Consumers)
	b.WriteString("| target | cache backend | closed-loop rps | conns | CPU µs/req | hit ratio | datastore q/s | open-loop rate | p50 ms | p99 ms | p99.9 ms | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range r.Throughput {
		cpu, hit, qps := "-", "-", "-"
		if t.CPUMicrosPerRequest > 0 {
			cpu = fmt.Sprintf("%.1f", t.CPUMicrosPerRequest)
		}
		if t.Target == "gateway" {
			hit, qps = fmt.Sprintf("%.4f", t.HitRatio), fmt.Sprintf("%.1f", t.DatastoreQPS)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %d | %s | %s | %s | %d/s | %s | %s | %s | %d+%d |\n",
			t.Target, dash(t.CacheBackend), t.RPS, t.Conns, cpu, hit, qps, t.OpenRate,
			fmtMS(t.LatencyMS.P50), fmtMS(t.LatencyMS.P99), fmtMS(t.LatencyMS.P999), t.ClosedErrors, t.OpenErrors)
	}
	return b.String()
}

// settingColumns are the first two columns of a consistency row: its
// db_update_frequency and push, or how changes reached DB-less nodes.
func settingColumns(c Consistency) (freq, push string) {
	if c.Via != "" {
		return c.Via, "-"
	}
	return fmt.Sprintf("%gs", c.DBUpdateFrequencyS), onOff(c.Push)
}

func consistencyTable(r *Results) string {
	var b strings.Builder
	b.WriteString("## Consistency window and tuning table\n\n")
	warm := true
	for _, c := range r.Consistency {
		warm = warm && c.Warm > 0
	}
	if warm {
		b.WriteString("Window = the Admin API write on node A returned -> the first probe of another node saw the change. " +
			"Each change is probed on one node (in turn), at a write time drawn uniformly over a whole number of poll intervals, " +
			"so the windows are independent samples. Just before each change, every entity it touches was verified warm on the probed node: " +
			"the credential and its consumer listed in the node's cache (Admin API `/cache`), the route, service and plugin answered from the node's " +
			"in-memory snapshot with the old status; the windows measure invalidation, not a cold read.\n\n")
	} else {
		b.WriteString("Window = the Admin API write returned -> the first probe of another node saw the change. " +
			"The changes were not verified warm on the probed nodes before they were made (a cluster measured from outside keeps its caches to itself).\n\n")
	}
	fmt.Fprintf(&b, "n = windows. Percentiles are nearest-rank; [lo-hi] is the %.0f %% order-statistic interval of the p50. "+
		"A p99 is printed from %d windows on (below, the max stands for it), and its %.0f %% upper bound from %d (the max of %d windows bounds the p99). "+
		"Model (push off): uniform on [0, f] + apply, apply = the probed nodes' mean poll query and snapshot rebuild + half the probe period; "+
		"KS p < %g flags a setting farther from the model than sampling error. "+
		"Node lag = the nodes' own sluice_invalidation_lag_seconds over the same changes (commit -> applied, datastore clock; n = events applied), "+
		"interpolated in buckets of f/10. A's write = the change's Admin API request on node A, sent to answered: the window starts at the answer, "+
		"and the change committed before it by as much as node A's own rebuild and reply took.\n\n",
		Confidence*100, MinP99Samples, Confidence*100, stats.MinSamples(0.99, Confidence), stats.MinSamples(0.99, Confidence), ModelAlpha)
	if slices.ContainsFunc(r.Consistency, func(c Consistency) bool { return c.Via != "" }) {
		b.WriteString("DB-less nodes (row \"POST /config to every node\"): a change is the changed declarative configuration POSTed to each node in turn; " +
			"window = the first POST sent -> the last node's first probe that saw the change (every node is probed). Changes are made one at a time, " +
			"each after its entities were verified warm on every node. A's write = each POST /config, sent to answered.\n\n")
	}
	b.WriteString("| db_update_frequency | push | n | missed | cold | p50 ms [95% CI] | p99 ms | p99 95% upper ms | max ms | model p50 / p99 ms | KS D, p | node lag n | node lag p50 / p99 ms | A's write p50 / max ms | polls/s/node | rows/s/node | rps on a node |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Consistency {
		model, ks := "-", "-"
		if m := c.Model; m != nil {
			model = fmt.Sprintf("%s / %s", fmtMS(m.P50), fmtMS(m.P99))
			ks = fmt.Sprintf("%.3f, %.3g", m.KSD, m.KSP)
			if m.Differs {
				ks += " **differs**"
			}
		}
		lag := "-"
		if c.NodeLag.Count > 0 {
			lag = fmtMS(c.NodeLag.P50) + " / "
			if c.NodeLag.P99 == nil {
				lag += fmt.Sprintf("- (n<%d)", MinP99Samples)
			} else {
				lag += fmtMS(*c.NodeLag.P99)
			}
		}
		freq, push := settingColumns(c)
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %.0f | %s | %s / %s | %.2f | %.2f | %.0f |\n",
			freq, push, c.Window.N, c.Missed, c.Cold, c.Window.p50Text(), c.Window.p99Text(), c.Window.p99UpperText(),
			fmtMS(c.Window.Max), model, ks, c.NodeLag.Count, lag, fmtMS(c.Write.P50), fmtMS(c.Write.Max), c.PollsPerSecPerNode, c.RowsPerSecPerNode, c.RPS)
	}
	for _, c := range r.Consistency {
		if c.Model == nil || !c.Model.Differs {
			continue
		}
		fmt.Fprintf(&b, "\n**db_update_frequency=%gs differs from the poll model** (KS D %.3f, p %.2g < %g): ", c.DBUpdateFrequencyS, c.Model.KSD, c.Model.KSP, ModelAlpha)
		if c.Write.Max > c.DBUpdateFrequencyS*1000/10 {
			fmt.Fprintf(&b, "node A's writes took up to %s ms (p50 %s ms), more than a tenth of the interval: they queued and returned in bursts, "+
				"so the windows were not independent of the poll phase. The machine was too busy for this measurement; rerun it.\n", fmtMS(c.Write.Max), fmtMS(c.Write.P50))
			continue
		}
		b.WriteString("node A's writes were prompt, so the nodes applied the changes other than the model says; see window_model.png.\n")
	}
	b.WriteString("\nBy kind of change (warm caches):\n\n")
	b.WriteString("| db_update_frequency | push | change | n | p50 ms [95% CI] | p99 ms | max ms |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, c := range r.Consistency {
		freq, push := settingColumns(c)
		for _, kind := range slices.Sorted(maps.Keys(c.ByChange)) {
			w := c.ByChange[kind]
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", freq, push, kind, w.N, w.p50Text(), w.p99Text(), fmtMS(w.Max))
		}
	}
	return b.String()
}

func stormTable(s *Storm) string {
	var b strings.Builder
	b.WriteString("\n## Invalidation storm\n\n")
	rounds := max(1, len(s.Rounds))
	fmt.Fprintf(&b, "Node B at %d requests/s (open loop) for %gs calm, then %gs while node A takes %d changes/s (half plugin updates, half new routes), %d time(s); each phase's row pools its segments' requests. db_update_frequency=%gs. ",
		s.Rate, s.PhaseS, s.PhaseS, s.TargetChangesPerSec, rounds, s.DBUpdateFrequencyS)
	if s.Pinning != "" {
		fmt.Fprintf(&b, "CPUs: %s. ", s.Pinning)
	} else {
		b.WriteString("Unpinned: the storm's writes compete with node B for CPU. ")
	}
	fmt.Fprintf(&b, "Node B ran with GOMAXPROCS=%d.\n\n", s.NodeBGOMAXPROCS)
	b.WriteString("| phase | requests | errors | p50 ms | p99 ms | p99.9 ms | max ms | node B CPU % | changes/s | events applied on B | snapshot applies on B / ms | full rebuilds on B / ms |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	type row struct {
		name    string
		p       StormPhase
		changes float64
	}
	rows := []row{{"calm", s.Calm, 0}}
	if s.Control != nil {
		rows = append(rows, row{"control", *s.Control, s.ControlChangesPerSec})
	}
	for _, ph := range append(rows, row{"storm", s.Storm, s.ChangesPerSec}) {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %.0f | %.0f | %.0f | %.0f / %.1f | %.0f / %.1f |\n", ph.name, ph.p.Requests, ph.p.Errors,
			fmtMS(ph.p.Latency.P50), fmtMS(ph.p.Latency.P99), fmtMS(ph.p.Latency.P999), fmtMS(ph.p.Latency.Max), ph.p.CPUPercent, ph.changes, ph.p.Events,
			ph.p.Applies, ph.p.ApplyMS, ph.p.Rebuilds, ph.p.RebuildMS)
	}
	fmt.Fprintf(&b, "\nstorm p99 / calm p99 = %.2f (target 2); %d changes failed.\n", s.Ratio(), s.WriteErrors+s.ControlWriteErrors)
	if s.Control != nil {
		fmt.Fprintf(&b, "\ncontrol: the same writes made on node C, whose datastore node B does not poll (node C beside node A). storm p99 / control p99 = %.2f: node B's own share; control p99 / calm p99 = %.2f: what the writes cost the machine.\n",
			s.ControlRatio(), s.MachineRatio())
	}
	if len(s.Rounds) > 1 {
		b.WriteString("\nEach round alone, p99 calm / control / storm (ms):")
		for i, r := range s.Rounds {
			fmt.Fprintf(&b, " %d: %s / %s / %s;", i+1, fmtMS(r.CalmP99), fmtMS(r.ControlP99), fmtMS(r.StormP99))
		}
		b.WriteString(" a single stall of the machine moves one segment's p99, hence the pooling.\n")
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// HTML renders the report with the PNG plots from dir inlined.
func HTML(dir string, r *Results, plots []string) (string, error) {
	var b strings.Builder
	b.WriteString("<!doctype html><meta charset=utf-8><title>sluice bench</title>\n")
	b.WriteString("<style>body{font:14px sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}</style>\n")
	// The markdown is simple: headings, paragraphs, lists and pipe tables.
	inTable := false
	for _, line := range strings.Split(Markdown(r, nil), "\n") {
		switch {
		case strings.HasPrefix(line, "|---"):
			continue
		case strings.HasPrefix(line, "|"):
			if !inTable {
				b.WriteString("<table>\n")
				inTable = true
			}
			cells := strings.Split(strings.Trim(line, "|"), "|")
			b.WriteString("<tr>")
			for _, c := range cells {
				b.WriteString("<td>" + html.EscapeString(strings.TrimSpace(c)) + "</td>")
			}
			b.WriteString("</tr>\n")
			continue
		}
		if inTable {
			b.WriteString("</table>\n")
			inTable = false
		}
		switch {
		case strings.HasPrefix(line, "## "):
			b.WriteString("<h2>" + html.EscapeString(line[3:]) + "</h2>\n")
		case strings.HasPrefix(line, "# "):
			b.WriteString("<h1>" + html.EscapeString(line[2:]) + "</h1>\n")
		case strings.HasPrefix(line, "- "):
			b.WriteString("<li>" + html.EscapeString(line[2:]) + "</li>\n")
		case line != "":
			b.WriteString("<p>" + html.EscapeString(line) + "</p>\n")
		}
	}
	if inTable {
		b.WriteString("</table>\n")
	}
	if len(plots) > 0 {
		b.WriteString("<h2>Plots</h2>\n")
	}
	for _, p := range plots {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return "", fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(&b, "<p><img alt=%q src=\"data:image/png;base64,%s\"></p>\n", p, base64.StdEncoding.EncodeToString(data))
	}
	return b.String(), nil
}
