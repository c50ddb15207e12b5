package report

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writePlots draws the window CDFs, throughput per target and latency
// percentiles as PNGs in dir and returns their file names.
func writePlots(dir string, r *Results) ([]string, error) {
	var names []string
	type drawer struct {
		name string
		draw func(*Results) (*plot.Plot, error)
	}
	for _, d := range []drawer{
		{"window_cdf.png", windowCDF},
		{"window_model.png", windowModel},
		{"throughput.png", throughputBars},
		{"latency.png", latencyBars},
		{"soak_rss.png", soakRSS},
		{"soak_goroutines.png", soakGoroutines},
		{"soak_latency.png", soakLatency},
		{"cluster_nodes_cdf.png", clusterNodesCDF},
	} {
		p, err := d.draw(r)
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", d.name, err)
		}
		if p == nil {
			continue
		}
		if err := p.Save(10*vg.Inch, 5*vg.Inch, filepath.Join(dir, d.name)); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		names = append(names, d.name)
	}
	return names, nil
}

// soakMinutes is the x axis of the soak plots.
const soakMinutes = "minutes since the soak traffic began"

// newPlot returns a plot with a title, axis labels (an empty one is left
// out) and a grid.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	return p
}

// addLine adds the i-th series of p: a 2-point line in the i-th colour
// (dashed from the eighth series on, when colours repeat), in the legend as
// name.
func addLine(p *plot.Plot, i int, name string, pts plotter.XYs) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(i)
	l.Width = vg.Points(2)
	l.Dashes = plotutil.Dashes(i / 7)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func windowCDF(r *Results) (*plot.Plot, error) {
	if len(r.Consistency) == 0 {
		return nil, nil
	}
	p := newPlot("Consistency window CDF per setting",
		"window (ms) from write on node A to visible on another node", "fraction of changes visible")
	for i, c := range r.Consistency {
		w := slices.Clone(c.Windows)
		slices.Sort(w)
		if len(w) == 0 {
			continue
		}
		pts := make(plotter.XYs, 0, len(w)+1)
		pts = append(pts, plotter.XY{X: 0, Y: 0})
		for j, v := range w {
			pts = append(pts, plotter.XY{X: v, Y: float64(j+1) / float64(len(w))})
		}
		freq, push := settingColumns(c)
		label := freq + " push=" + push
		if c.Via != "" {
			label = c.Via
		}
		if err := addLine(p, i, label, pts); err != nil {
			return nil, err
		}
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Y.Max = 1.02
	return p, nil
}

// windowModel draws, per setting with push off, the CDF of (window -
// apply) / f against the poll model's, uniform on [0, 1]: the diagonal.
func windowModel(r *Results) (*plot.Plot, error) {
	p := newPlot("Windows against the poll model (push off)",
		"(window - apply time) / db_update_frequency", "fraction of changes visible")
	if err := addLine(p, 0, "model: uniform on [0, 1]", plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}}); err != nil {
		return nil, err
	}
	drawn := false
	for i, c := range r.Consistency {
		if c.Model == nil || len(c.Windows) == 0 {
			continue
		}
		w := slices.Sorted(slices.Values(c.Windows))
		f := c.DBUpdateFrequencyS * 1000
		pts := make(plotter.XYs, 0, len(w)+1)
		pts = append(pts, plotter.XY{X: (w[0] - c.Model.ApplyMS) / f, Y: 0})
		for j, v := range w {
			pts = append(pts, plotter.XY{X: (v - c.Model.ApplyMS) / f, Y: float64(j+1) / float64(len(w))})
		}
		if err := addLine(p, i+1, fmt.Sprintf("%gs (n=%d, KS p=%.2g)", c.DBUpdateFrequencyS, len(w), c.Model.KSP), pts); err != nil {
			return nil, err
		}
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Y.Max = 1.02
	return p, nil
}

func targetLabel(t Throughput) string {
	if t.CacheBackend != "" {
		return t.Target + "/" + t.CacheBackend
	}
	return t.Target
}

func throughputBars(r *Results) (*plot.Plot, error) {
	if len(r.Throughput) == 0 {
		return nil, nil
	}
	p := newPlot("Closed-loop throughput per target (requests/s)", "", "requests/s")
	vals := make(plotter.Values, len(r.Throughput))
	labels := make([]string, len(r.Throughput))
	for i, t := range r.Throughput {
		vals[i], labels[i] = t.RPS, targetLabel(t)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return nil, err
	}
	bars.Color = color.RGBA{R: 60, G: 110, B: 180, A: 255}
	p.Add(bars)
	p.NominalX(labels...)
	return p, nil
}

func latencyBars(r *Results) (*plot.Plot, error) {
	if len(r.Throughput) == 0 {
		return nil, nil
	}
	p := newPlot("Open-loop latency percentiles (ms) at a fixed rate", "", "ms")
	labels := make([]string, len(r.Throughput))
	series := []struct {
		name string
		get  func(Latency) float64
	}{
		{"p50", func(l Latency) float64 { return l.P50 }},
		{"p90", func(l Latency) float64 { return l.P90 }},
		{"p99", func(l Latency) float64 { return l.P99 }},
		{"p99.9", func(l Latency) float64 { return l.P999 }},
	}
	w := vg.Points(14)
	for si, s := range series {
		vals := make(plotter.Values, len(r.Throughput))
		for i, t := range r.Throughput {
			vals[i], labels[i] = s.get(t.LatencyMS), targetLabel(t)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(si)
		bars.Offset = w * vg.Length(si-len(series)/2)
		p.Add(bars)
		p.Legend.Add(s.name, bars)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(labels...)
	return p, nil
}

// soakLines draws one line per node of get over the soak's intervals
// (samples where get reports false are left out).
func soakLines(r *Results, title, ylabel string, get func(SoakNode) (float64, bool)) (*plot.Plot, error) {
	if r.Soak == nil || len(r.Soak.Intervals) == 0 {
		return nil, nil
	}
	p := newPlot(title, soakMinutes, ylabel)
	for i, name := range nodeNames(r.Soak.Intervals) {
		var pts plotter.XYs
		for _, in := range r.Soak.Intervals {
			if v, ok := get(nodeIn(in, name)); ok {
				pts = append(pts, plotter.XY{X: in.TS / 60, Y: v})
			}
		}
		if len(pts) == 0 {
			continue
		}
		if err := addLine(p, i, name, pts); err != nil {
			return nil, err
		}
	}
	p.Y.Min = 0
	p.Legend.Top = false
	p.Legend.Left = true
	return p, nil
}

func soakRSS(r *Results) (*plot.Plot, error) {
	return soakLines(r, "Soak: resident set size per node (MiB)", "RSS (MiB)", func(n SoakNode) (float64, bool) {
		return float64(n.RSSBytes) / (1 << 20), n.RSSBytes > 0
	})
}

func soakGoroutines(r *Results) (*plot.Plot, error) {
	return soakLines(r, "Soak: goroutines per node", "goroutines", func(n SoakNode) (float64, bool) {
		return n.Goroutines, n.Goroutines > 0
	})
}

func soakLatency(r *Results) (*plot.Plot, error) {
	if r.Soak == nil || len(r.Soak.Intervals) == 0 {
		return nil, nil
	}
	p := newPlot(fmt.Sprintf("Soak: open-loop latency per interval at %d requests/s (all nodes)", r.Soak.RateRPS), soakMinutes, "ms")
	for i, s := range []struct {
		name string
		get  func(Latency) float64
	}{
		{"p50", func(l Latency) float64 { return l.P50 }},
		{"p99", func(l Latency) float64 { return l.P99 }},
	} {
		pts := make(plotter.XYs, 0, len(r.Soak.Intervals))
		for _, in := range r.Soak.Intervals {
			if in.Requests > 0 {
				pts = append(pts, plotter.XY{X: in.TS / 60, Y: s.get(in.LatencyMS)})
			}
		}
		if len(pts) == 0 {
			continue
		}
		if err := addLine(p, i, s.name, pts); err != nil {
			return nil, err
		}
	}
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}
