package proxymetrics

import (
	promplugin "github.com/sluice-gw/sluice/gateway/plugins/prometheus"
)

// Export implements promplugin.Exporter: it records the prometheus
// plugin's measurements in Kong's per-request families. With Kong compat
// on, the Observer records every matched request already, as Kong with a
// global prometheus plugin with every metric on would: the plugin's
// measurements are then not recorded again.
func (m *Observer) Export(pm *promplugin.Measurement) {
	if m.kong != nil {
		return
	}
	k := m.kongFams
	service, route := serviceLabel(pm.Service), routeLabel(pm.Route)
	if pm.StatusCodes {
		source := "kong"
		if pm.FromService {
			source = "service"
		}
		k.requests.WithLabelValues(service, route, statusLabel(pm.Status), source, kongWorkspace, pm.Consumer).Inc()
	}
	if pm.Latencies {
		k.kongLat.WithLabelValues(service, route, kongWorkspace).Observe(ms(pm.Served.Proxy))
		k.reqLat.WithLabelValues(service, route, kongWorkspace).Observe(ms(pm.Served.Total))
		if pm.Served.Upstream > 0 {
			k.upstreamLat.WithLabelValues(service, route, kongWorkspace).Observe(ms(pm.Served.Upstream))
		}
	}
	if pm.Bandwidth {
		k.bandwidth.WithLabelValues(service, route, "ingress", kongWorkspace, pm.Consumer).Add(float64(pm.Served.RequestBytes))
		k.bandwidth.WithLabelValues(service, route, "egress", kongWorkspace, pm.Consumer).Add(float64(pm.Served.ResponseBytes))
	}
}

var _ promplugin.Exporter = (*Observer)(nil)

// statusLabel is a status as a label value; "other" outside 1-599.
func statusLabel(status int) string {
	if status <= 0 || status >= len(statusCodes) {
		return "other"
	}
	return statusCodes[status]
}
