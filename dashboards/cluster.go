package dashboards

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// Cluster builds the "Sluice / Cluster consistency" dashboard: how fast
// invalidation events reach every node, the polling loop, the datastore and
// the router rebuilds the events cause.
func Cluster() (dashboard.Dashboard, error) {
	const (
		sel = `{job="sluice", instance=~"$instance"}`
		lag = "sluice_invalidation_lag_seconds"
	)
	bd := newBoard("sluice-cluster", "Sluice / Cluster consistency",
		"Invalidation lag, cluster event polling, datastore health and router rebuilds.")

	bd.row("Invalidation")
	bd.timeseries("Invalidation lag p50/p99 by instance",
		"Time from an entity change in the datastore until the node applied its invalidation event. Expect p99 below 2x db_update_frequency.",
		"s", 12, append(quantiles(lag, sel, "instance", "0.50"), quantiles(lag, sel, "instance", "0.99")...)...)
	bd.heatmap("Invalidation lag distribution", "Invalidation events applied per lag bucket, all selected nodes.", "s", 12,
		"sum by (le) (increase("+lag+"_bucket"+sel+"[$__rate_interval]))")
	bd.timeseries("Events emitted and applied/s", "Cluster events written by each node and applied by each node.", "ops", 24,
		target{expr: rate("sluice_cluster_events_emitted_total", sel, "instance"), legend: "emitted {{instance}}"},
		target{expr: rate("sluice_cluster_events_applied_total", sel, "instance"), legend: "applied {{instance}}"})

	bd.row("Polling")
	bd.timeseries("Poll duration", "p50 and p99 of one poll of the cluster events table.", "s", 12,
		append(quantiles("sluice_cluster_poll_duration_seconds", sel, "instance", "0.50"),
			quantiles("sluice_cluster_poll_duration_seconds", sel, "instance", "0.99")...)...)
	bd.timeseries("Poll errors/s", "Failed polls of the cluster events table; invalidations stall while this is non-zero.", "ops", 12,
		target{expr: rate("sluice_cluster_poll_errors_total", sel, "instance"), legend: "{{instance}}"})

	bd.row("Datastore")
	bd.stat("Datastore reachable", "Whether each node can reach its datastore (1) or not (0).", "none", 8, upDown(),
		target{expr: "min by (instance) (sluice_datastore_reachable" + sel + ")", legend: "{{instance}}"})
	bd.timeseries("Datastore query latency p99 by operation", "99th percentile of datastore query duration per operation.", "s", 16,
		quantiles("sluice_datastore_query_duration_seconds", sel, "operation", "0.99")...)

	bd.row("Router")
	bd.timeseries("Router rebuilds/s", "Full route table rebuilds: start, a purge after lost events, DB-less configurations, very large batches; single route and service changes are applied without one.", "ops", 8,
		target{expr: rate("sluice_router_rebuilds_total", sel, "instance"), legend: "{{instance}}"})
	bd.timeseries("Snapshot rebuild time", "p50 and p99 of one rebuild of the route table (routes) or the plugin set (plugins) from the datastore; the proxy keeps serving the previous snapshot meanwhile, but a long rebuild takes CPU from it.", "s", 8,
		append(quantiles("sluice_snapshot_rebuild_duration_seconds", sel, "snapshot", "0.50"),
			quantiles("sluice_snapshot_rebuild_duration_seconds", sel, "snapshot", "0.99")...)...)
	bd.timeseries("Routes", "Routes in each node's current route table; nodes should agree.", "short", 8,
		target{expr: "max by (instance) (sluice_router_routes" + sel + ")", legend: "{{instance}}"})
	bd.timeseries("Snapshot apply time", "p50 and p99 of applying a batch of changed routes, services or plugins to a snapshot (their datastore reads included) without a rebuild.", "s", 12,
		append(quantiles("sluice_snapshot_apply_duration_seconds", sel, "snapshot", "0.50"),
			quantiles("sluice_snapshot_apply_duration_seconds", sel, "snapshot", "0.99")...)...)
	bd.timeseries("Snapshot changes applied/s", "Changed entities applied to each snapshot from their events.", "ops", 12,
		target{expr: rate("sluice_snapshot_changes_applied_total", sel, "snapshot"), legend: "{{snapshot}}"})
	return bd.build()
}

// upDown maps 0 to a red "down" and 1 to a green "up".
func upDown() []dashboard.ValueMapping {
	text := func(s string) *string { return &s }
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"0": {Text: text("down"), Color: text("red")},
			"1": {Text: text("up"), Color: text("green")},
		},
	}}}
}
