package admin

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// KongVersion is the Kong release whose Admin API Sluice follows. GET /
// reports it as "version", which Kong's clients (go-kong, decK) parse as a
// semver to decide which endpoints and fields to use; Sluice's own version
// is "sluice_version" and the Server header.
const KongVersion = "3.9.1"

// info serves GET /, Kong's node information.
func (h *handler) info(w http.ResponseWriter, r *http.Request, _ []string) error {
	available := map[string]bool{}
	if h.plugins != nil {
		for _, n := range h.plugins.Names() {
			available[n] = true
		}
	}
	enabled, err := h.pluginsInUse(r.Context())
	if err != nil {
		return err
	}
	cfg := make(map[string]any, len(h.opts.Configuration)+1)
	maps.Copy(cfg, h.opts.Configuration)
	if _, ok := cfg["router_flavor"]; !ok {
		// Sluice's router follows Kong's traditional router; clients such
		// as go-kong read the flavor to know which route fields apply.
		cfg["router_flavor"] = "traditional"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tagline":        "Welcome to sluice",
		"version":        KongVersion,
		"sluice_version": h.opts.Version,
		"edition":        "community",
		"hostname":       h.opts.Hostname,
		"node_id":        h.opts.NodeID,
		"plugins": map[string]any{
			"available_on_server": available,
			"enabled_in_cluster":  enabled,
		},
		"configuration": cfg,
		"pids":          map[string]any{"master": os.Getpid(), "workers": []int{os.Getpid()}},
	})
	return nil
}

// pluginsInUse returns the sorted names of the plugins configured in the
// datastore.
func (h *handler) pluginsInUse(ctx context.Context) ([]string, error) {
	all, err := h.listAll(ctx, store.ListQuery{Kind: entity.KindPlugin})
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range all {
		if n := e.(*entity.Plugin).Name; !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// enabledPlugins serves GET /plugins/enabled.
func (h *handler) enabledPlugins(w http.ResponseWriter, _ *http.Request, _ []string) error {
	names := []string{}
	if h.plugins != nil {
		names = append(names, h.plugins.Names()...)
	}
	slices.Sort(names)
	writeJSON(w, http.StatusOK, map[string]any{"enabled_plugins": names})
	return nil
}

// status serves GET /status: datastore reachability, the proxy's
// connection counters and this process's memory, in Kong's shape.
func (h *handler) status(w http.ResponseWriter, r *http.Request, _ []string) error {
	unit := r.URL.Query().Get("unit")
	if unit == "" {
		unit = "m"
	}
	scale := 2
	if s := r.URL.Query().Get("scale"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 10 {
			return &apiError{status: http.StatusBadRequest, body: message{"invalid scale: " + s}}
		}
		scale = n
	}
	if _, ok := unitSizes[unit]; !ok {
		return &apiError{status: http.StatusBadRequest,
			body: message{"invalid unit '" + unit + "' (expected 'k/K', 'm/M', or 'g/G')"}}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	size := func(b uint64) any { return formatSize(b, unit, scale) }
	var server ServerStats
	if h.opts.Server != nil {
		server = h.opts.Server()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"database": map[string]any{"reachable": h.reachable(r.Context())},
		"server":   server,
		"memory": map[string]any{
			"workers_lua_vms": []any{map[string]any{"http_allocated_gc": size(ms.HeapAlloc), "pid": os.Getpid()}},
			"go": map[string]any{"heap_alloc": size(ms.HeapAlloc), "heap_sys": size(ms.HeapSys),
				"sys": size(ms.Sys), "num_gc": ms.NumGC, "goroutines": runtime.NumGoroutine()},
		},
	})
	return nil
}

var unitSizes = map[string]float64{"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
	"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

var unitNames = map[string]string{"k": "KiB", "m": "MiB", "g": "GiB", "K": "KiB", "M": "MiB", "G": "GiB"}

// formatSize renders b bytes as Kong does: a number for unit "b", else a
// string such as "0.02 MiB".
func formatSize(b uint64, unit string, scale int) any {
	if unit == "b" {
		return b
	}
	return fmt.Sprintf("%.*f %s", scale, float64(b)/unitSizes[unit], unitNames[unit])
}

// reachable reports whether the datastore answers.
func (h *handler) reachable(ctx context.Context) bool {
	if h.opts.Reachable != nil {
		return h.opts.Reachable(ctx)
	}
	if p, ok := h.store.(store.Pinger); ok {
		return p.Ping(ctx) == nil
	}
	_, err := h.store.Now(ctx)
	return err == nil
}

// serveMetrics serves GET /metrics with Options.Metrics.
func (h *handler) serveMetrics(w http.ResponseWriter, r *http.Request, _ []string) error {
	h.opts.Metrics.ServeHTTP(w, r)
	return nil
}
