package cluster

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/bench/report"
)

// Exporter exposes the last run's figures as Prometheus metrics, so that a
// dashboard can chart the window over days (`--serve ADDR`). It is a
// Collector: the figures are read at scrape time. Safe for concurrent use.
type Exporter struct {
	window, change, nodeLag, samples, missed, lagging, freq, last, left *prometheus.Desc

	// mu guards res.
	mu  sync.Mutex
	res *report.Results
}

// NewExporter returns an Exporter registered with reg.
func NewExporter(reg prometheus.Registerer) *Exporter {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sluice_bench_cluster_"+name, help, labels, nil)
	}
	e := &Exporter{
		window:  d("window_seconds", "Consistency window of the last run per node: canary write answered to first probe seeing it.", "node", "quantile"),
		change:  d("change_window_seconds", "Consistency window of the last run per change kind, over the reading nodes.", "change", "quantile"),
		nodeLag: d("node_lag_seconds", "The node's own sluice_invalidation_lag_seconds over the last run's probing.", "node", "quantile"),
		samples: d("samples", "Windows measured on the node in the last run.", "node"),
		missed:  d("missed", "Changes the node had not shown within the probe timeout in the last run.", "node"),
		lagging: d("lagging", "1 when the node stood out in the last run.", "node"),
		freq:    d("recommended_frequency_seconds", "Proposed db_update_frequency per staleness budget (0: only push meets it).", "budget_seconds"),
		last:    d("last_run_timestamp_seconds", "When the last run started."),
		left:    d("canary_left", "Canary entities still listed after the last run's cleanup."),
	}
	reg.MustRegister(e)
	return e
}

// Set makes r the figures exposed.
func (e *Exporter) Set(r *report.Results) {
	e.mu.Lock()
	e.res = r
	e.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.window, e.change, e.nodeLag, e.samples, e.missed, e.lagging, e.freq, e.last, e.left} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	r := e.res
	e.mu.Unlock()
	if r == nil || r.Cluster == nil {
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	quantiles := func(d *prometheus.Desc, l report.Latency, label string) {
		for _, q := range []struct {
			name string
			ms   float64
		}{{"0.5", l.P50}, {"0.9", l.P90}, {"0.99", l.P99}, {"1", l.Max}} {
			g(d, q.ms/1000, label, q.name)
		}
	}
	c := r.Cluster
	g(e.last, float64(r.StartedAt.Unix()))
	g(e.left, float64(c.Cleanup.Left))
	for k, w := range c.ByChange {
		quantiles(e.change, w.Latency, k)
	}
	for _, n := range c.Nodes {
		if n.Window.Samples+n.Window.Missed > 0 {
			quantiles(e.window, n.Window.Latency, n.Name)
			g(e.samples, float64(n.Window.Samples), n.Name)
			g(e.missed, float64(n.Window.Missed), n.Name)
			g(e.lagging, map[bool]float64{true: 1}[n.Lagging], n.Name)
		}
		if n.Inside != nil && n.Inside.LagEvents > 0 {
			quantiles(e.nodeLag, n.Inside.LagMS, n.Name)
		}
	}
	for _, b := range c.Budgets {
		g(e.freq, b.FrequencyS, strconv.FormatFloat(b.BudgetMS/1000, 'g', -1, 64))
	}
}

var _ prometheus.Collector = (*Exporter)(nil)
