package dashboards

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// Families returns the metric families that Sluice nodes export (without the
// Kong-compatible ones), sorted. The caller owns the returned slice.
func Families() []string {
	return []string{
		"sluice_cache_bytes",
		"sluice_cache_entries",
		"sluice_cache_evictions_total",
		"sluice_cache_hits_total",
		"sluice_cache_misses_total",
		"sluice_cache_negative_hits_total",
		"sluice_cache_stale_hits_total",
		"sluice_client_errors_total",
		"sluice_cluster_events_applied_total",
		"sluice_cluster_events_emitted_total",
		"sluice_cluster_poll_duration_seconds",
		"sluice_cluster_poll_errors_total",
		"sluice_datastore_query_duration_seconds",
		"sluice_datastore_reachable",
		"sluice_http_requests_total",
		"sluice_invalidation_lag_seconds",
		"sluice_request_duration_seconds",
		"sluice_router_rebuilds_total",
		"sluice_router_routes",
		"sluice_snapshot_apply_duration_seconds",
		"sluice_snapshot_changes_applied_total",
		"sluice_snapshot_rebuild_duration_seconds",
		"sluice_upstream_duration_seconds",
	}
}

// MetricNames parses expr as PromQL and returns the metric names its vector
// selectors name, in order of appearance and without duplicates. A selector
// that names its metric only through a __name__ matcher is an error, because
// callers use the result to check names against [Families].
func MetricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("dashboards: cannot parse %q: %w", expr, err)
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name == "" {
			bad = fmt.Errorf("dashboards: selector %s in %q has no metric name", vs, expr)
			return nil
		}
		if !slices.Contains(names, vs.Name) {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, bad
}

// Family returns the family a sample name belongs to: the name itself, or for
// a histogram's _bucket, _sum and _count series the name without the suffix,
// provided the result is in families. ok is false when neither is listed.
func Family(name string, families []string) (family string, ok bool) {
	if slices.Contains(families, name) {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, cut := strings.CutSuffix(name, suffix); cut && slices.Contains(families, base) {
			return base, true
		}
	}
	return "", false
}
