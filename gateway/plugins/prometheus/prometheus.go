// Package prometheus implements Kong's prometheus plugin: in the log
// phase it hands each request it applies to, with the families its config
// switches on, to an Exporter, which the node implements over Kong's
// metric families (kong_http_requests_total, kong_*_latency_ms,
// kong_bandwidth_bytes) on its /metrics.
package prometheus

import (
	"encoding/json"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "prometheus"
	Priority = 13
)

// Exporter records the measurements of the requests the plugin applies
// to. It must be quick and safe for concurrent use: it runs on the
// request's goroutine.
type Exporter interface {
	Export(m *Measurement)
}

// Measurement is one request as Kong's prometheus plugin measures it.
type Measurement struct {
	// Route and Service are the matched entities (never nil: requests that
	// matched no route are not measured, as in Kong).
	Route   *entity.Route
	Service *entity.Service
	// Consumer is the authenticated consumer's username with per_consumer,
	// else "".
	Consumer string
	// Status is the response status; FromService is true when the service
	// answered (Kong's source "service", else "kong").
	Status      int
	FromService bool
	// Served holds the latencies and sizes.
	Served plugins.Served
	// StatusCodes, Latencies and Bandwidth say which families to record:
	// kong_http_requests_total; kong_kong_latency_ms,
	// kong_upstream_latency_ms and kong_request_latency_ms;
	// kong_bandwidth_bytes.
	StatusCodes, Latencies, Bandwidth bool
}

// Config is the plugin's configuration with Kong 3.9's fields, all off by
// default.
type Config struct {
	// PerConsumer fills the consumer label of kong_http_requests_total and
	// kong_bandwidth_bytes with the consumer's username.
	PerConsumer bool `json:"per_consumer"`
	// StatusCodeMetrics, LatencyMetrics and BandwidthMetrics turn on the
	// families listed in Measurement.
	StatusCodeMetrics bool `json:"status_code_metrics"`
	// AIMetrics is Kong's AI proxy families: Sluice has no AI proxy, so
	// it adds nothing.
	AIMetrics        bool `json:"ai_metrics"`
	LatencyMetrics   bool `json:"latency_metrics"`
	BandwidthMetrics bool `json:"bandwidth_metrics"`
	// UpstreamHealthMetrics is accepted; kong_upstream_target_health is
	// exported with prometheus_kong_compat (Sluice runs no health checks:
	// every target is healthchecks_off).
	UpstreamHealthMetrics bool `json:"upstream_health_metrics"`
}

// Plugin is the prometheus plugin.
type Plugin struct {
	exp Exporter
}

// New returns the plugin exporting through exp; nil exports nothing
// (tools that only validate configurations).
func New(exp Exporter) *Plugin { return &Plugin{exp: exp} }

// Name implements plugins.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements plugins.Plugin.
func (*Plugin) Priority() int { return Priority }

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any { return &Config{} }

// Configure implements plugins.Plugin.
func (p *Plugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	var c Config
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	return &handler{Config: c, exp: p.exp}, nil
}

// handler is one configured instance; its JSON form is its Config.
type handler struct {
	Config
	exp Exporter
}

// Log implements plugins.Logger.
func (h *handler) Log(c *plugins.Context) {
	if h.exp == nil || c.Route == nil || c.Service == nil {
		return
	}
	if !h.StatusCodeMetrics && !h.LatencyMetrics && !h.BandwidthMetrics {
		return
	}
	_, _, exited := c.Exited()
	m := Measurement{Route: c.Route, Service: c.Service, Status: c.Response.Status(),
		FromService: !exited && c.Served.Upstream > 0, Served: c.Served,
		StatusCodes: h.StatusCodeMetrics, Latencies: h.LatencyMetrics, Bandwidth: h.BandwidthMetrics}
	if h.PerConsumer && c.Consumer != nil && c.Consumer.Username != nil {
		m.Consumer = *c.Consumer.Username
	}
	h.exp.Export(&m)
}

var (
	_ plugins.Plugin    = (*Plugin)(nil)
	_ plugins.Describer = (*Plugin)(nil)
	_ plugins.Logger    = (*handler)(nil)
)
