package httplog

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are http-log's instruments.
type metrics struct {
	sent       prometheus.Counter
	sendErrors prometheus.Counter
	dropped    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		sent: f.NewCounter(prometheus.CounterOpts{
			Name: "sluice_http_log_entries_sent_total", Help: "http-log entries the log servers accepted",
		}),
		sendErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "sluice_http_log_send_errors_total", Help: "http-log requests to log servers that failed (each retry counts)",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_log_entries_dropped_total",
			Help: "http-log entries dropped: queue_full (max_entries), max_bytes, retries_exhausted (max_retry_time), shutdown",
		}, []string{"reason"}),
	}
}
