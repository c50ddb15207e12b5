package node

import (
	promplugin "github.com/sluice-gw/sluice/gateway/plugins/prometheus"
)

// kongExporter records the prometheus plugin's measurements in Kong's
// per-request families. With prometheus_kong_compat on the node records
// every matched request already, as Kong with a global prometheus plugin
// with every metric on would: the plugin's measurements are then not
// recorded again.
type kongExporter struct {
	k      *kongMetrics
	compat bool
}

// Export implements promplugin.Exporter.
func (e kongExporter) Export(m *promplugin.Measurement) {
	if e.compat {
		return
	}
	service, route := serviceLabel(m.Service), routeLabel(m.Route)
	if m.StatusCodes {
		source := "kong"
		if m.FromService {
			source = "service"
		}
		e.k.requests.WithLabelValues(service, route, statusLabel(m.Status), source, kongWorkspace, m.Consumer).Inc()
	}
	if m.Latencies {
		e.k.kongLat.WithLabelValues(service, route, kongWorkspace).Observe(ms(m.Served.Proxy))
		e.k.reqLat.WithLabelValues(service, route, kongWorkspace).Observe(ms(m.Served.Total))
		if m.Served.Upstream > 0 {
			e.k.upstreamLat.WithLabelValues(service, route, kongWorkspace).Observe(ms(m.Served.Upstream))
		}
	}
	if m.Bandwidth {
		e.k.bandwidth.WithLabelValues(service, route, "ingress", kongWorkspace, m.Consumer).Add(float64(m.Served.RequestBytes))
		e.k.bandwidth.WithLabelValues(service, route, "egress", kongWorkspace, m.Consumer).Add(float64(m.Served.ResponseBytes))
	}
}

var _ promplugin.Exporter = kongExporter{}

// statusLabel is a status as a label value; "other" outside 1-599.
func statusLabel(status int) string {
	if status <= 0 || status >= len(statusCodes) {
		return "other"
	}
	return statusCodes[status]
}
