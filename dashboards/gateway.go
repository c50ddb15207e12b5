package dashboards

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// Gateway builds the "Sluice / Gateway" dashboard: request rate, status codes
// and latency of the proxy, per service and route.
func Gateway() (dashboard.Dashboard, error) {
	const (
		sel      = `{job="sluice", instance=~"$instance", service=~"$service", route=~"$route"}`
		reqs     = "sluice_http_requests_total"
		request  = "sluice_request_duration_seconds"
		upstream = "sluice_upstream_duration_seconds"
	)
	bd := newBoard("sluice-gateway", "Sluice / Gateway",
		"Proxy traffic, status codes and latency of the Sluice nodes.")
	bd.b.WithVariable(labelValues("service", "Service", reqs, `job="sluice", instance=~"$instance"`)).
		WithVariable(labelValues("route", "Route", reqs, `job="sluice", instance=~"$instance", service=~"$service"`))

	bd.row("Traffic")
	bd.stat("Requests/s", "Proxied requests per second over the selection.", "reqps", 6, nil,
		target{expr: "sum(rate(" + reqs + sel + "[$__rate_interval]))", legend: "rps"})
	bd.stat("5xx ratio", "Share of proxied responses with a 5xx status.", "percentunit", 6, nil,
		target{expr: `sum(rate(sluice_http_requests_total{job="sluice", instance=~"$instance", service=~"$service", route=~"$route", code=~"5.."}[$__rate_interval])) / sum(rate(` + reqs + sel + "[$__rate_interval]))", legend: "5xx"})
	bd.stat("Request p99", "99th percentile of the total request duration.", "s", 6, nil,
		target{expr: quantile("0.99", request, sel, ""), legend: "p99"})
	bd.stat("Upstream p99", "99th percentile of the time spent waiting for upstreams.", "s", 6, nil,
		target{expr: quantile("0.99", upstream, sel, ""), legend: "p99"})
	bd.timeseries("Requests/s by instance", "Proxied requests per second on each node.", "reqps", 12,
		target{expr: rate(reqs, sel, "instance"), legend: "{{instance}}"})
	bd.timeseries("Requests/s by service", "Proxied requests per second per service.", "reqps", 12,
		target{expr: rate(reqs, sel, "service"), legend: "{{service}}"})
	bd.timeseries("Status codes by service", "Responses per second per service and status code.", "reqps", 12,
		target{expr: rate(reqs, sel, "service, code"), legend: "{{service}} {{code}}"})
	bd.timeseries("Status codes by route", "Responses per second per route and status code.", "reqps", 12,
		target{expr: rate(reqs, sel, "route, code"), legend: "{{route}} {{code}}"})
	bd.timeseries("Client errors by reason", "Requests refused or cut short because of the client (malformed framing, "+
		"timeouts, bodies or heads over the limits, connections closed mid-body): not the services' fault.", "reqps", 12,
		target{expr: rate("sluice_client_errors_total", `{job="sluice", instance=~"$instance"}`, "reason"), legend: "{{reason}}"})

	bd.row("Latency")
	bd.timeseries("Request latency", "p50, p90 and p99 of the time from request received to response sent.", "s", 12,
		quantiles(request, sel, "", "0.50", "0.90", "0.99")...)
	bd.timeseries("Request latency p99 by route", "99th percentile of the request duration per route.", "s", 12,
		quantiles(request, sel, "route", "0.99")...)
	bd.timeseries("Upstream latency", "p50, p90 and p99 of the time spent waiting for the upstream.", "s", 12,
		quantiles(upstream, sel, "", "0.50", "0.90", "0.99")...)
	bd.timeseries("Upstream latency p99 by service", "99th percentile of the upstream duration per service.", "s", 12,
		quantiles(upstream, sel, "service", "0.99")...)
	return bd.build()
}
