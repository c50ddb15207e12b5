package node

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// statusHandler serves the status listener: /status (Kong's shape, the
// datastore part), /status/ready (Kong 3.x readiness) and /metrics.
func (n *Node) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"database": map[string]bool{"reachable": n.reachable(r.Context())}})
	})
	mux.HandleFunc("GET /status/ready", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case n.draining.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": "draining"})
		case !n.snaps.Ready():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": "route table and plugins not yet built"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"message": "ready"})
		}
	})
	mux.Handle("GET /metrics", n.metricsHandler())
	return mux
}

// metricsHandler serves the registry, after forgetting again the series
// of the routes that left the table recently (goneRoutes).
func (n *Node) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range n.gone.recent() {
			n.observer.Forget(p)
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
