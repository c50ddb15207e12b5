package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/bench/report"
)

func TestExporter(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := NewExporter(reg)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before any run: %d series, %v; want none", n, err)
	}
	e.Set(&report.Results{StartedAt: time.Unix(1700000000, 0), Cluster: &report.Cluster{
		Nodes: []report.ClusterNode{
			{Name: "a", Window: report.Window{Latency: report.Latency{P50: 250, P90: 450, P99: 495, Max: 500}, Samples: 40}},
			{Name: "b", Window: report.Window{Missed: 40}, Lagging: true},
		},
		Budgets: []report.Budget{{BudgetMS: 100, PushOnly: true}, {BudgetMS: 1000, FrequencyS: 0.94}},
	}})
	want := `
# HELP sluice_bench_cluster_lagging 1 when the node stood out in the last run.
# TYPE sluice_bench_cluster_lagging gauge
sluice_bench_cluster_lagging{node="a"} 0
sluice_bench_cluster_lagging{node="b"} 1
# HELP sluice_bench_cluster_recommended_frequency_seconds Proposed db_update_frequency per staleness budget (0: only push meets it).
# TYPE sluice_bench_cluster_recommended_frequency_seconds gauge
sluice_bench_cluster_recommended_frequency_seconds{budget_seconds="0.1"} 0
sluice_bench_cluster_recommended_frequency_seconds{budget_seconds="1"} 0.94
# HELP sluice_bench_cluster_window_seconds Consistency window of the last run per node: canary write answered to first probe seeing it.
# TYPE sluice_bench_cluster_window_seconds gauge
sluice_bench_cluster_window_seconds{node="a",quantile="0.5"} 0.25
sluice_bench_cluster_window_seconds{node="a",quantile="0.9"} 0.45
sluice_bench_cluster_window_seconds{node="a",quantile="0.99"} 0.495
sluice_bench_cluster_window_seconds{node="a",quantile="1"} 0.5
sluice_bench_cluster_window_seconds{node="b",quantile="0.5"} 0
sluice_bench_cluster_window_seconds{node="b",quantile="0.9"} 0
sluice_bench_cluster_window_seconds{node="b",quantile="0.99"} 0
sluice_bench_cluster_window_seconds{node="b",quantile="1"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_bench_cluster_lagging",
		"sluice_bench_cluster_recommended_frequency_seconds", "sluice_bench_cluster_window_seconds"); err != nil {
		t.Error(err)
	}
}
