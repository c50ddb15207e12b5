// Package admin is the gateway's Kong-compatible Admin API: CRUD on
// services, routes, consumers, plugins and key-auth credentials, node
// information, status and the entity cache endpoints. Every write emits its
// cache invalidations in the same datastore transaction as the change.
package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Options configures the Admin API. Store is required; the other fields
// may be zero.
type Options struct {
	// Store is the datastore the entities live in.
	Store store.Store
	// Cache serves the /cache endpoints. Nil means nothing is cached: GET
	// answers 404 and DELETE does nothing.
	Cache *cache.Cache
	// Plugins validates plugin configurations. Nil means no plugin is
	// available, so every plugin write is refused.
	Plugins PluginValidator
	// Cluster turns every write's cache keys into cluster events and
	// applies them on this node. Nil emits no events.
	Cluster Invalidator
	// NodeID and Hostname are shown in GET /. Version is Sluice's own
	// version, shown in GET / as "sluice_version" and in the Server header;
	// GET /'s "version" is KongVersion.
	NodeID, Version, Hostname string
	// Configuration is shown in GET / as is; it must hold no secrets.
	Configuration map[string]any
	// Reachable reports whether the datastore can be reached, for GET
	// /status. Nil asks the store (Ping, or Now).
	Reachable func(ctx context.Context) bool
	// DBLess says the node has no shared datastore (database = off): its
	// entities are replaced whole by POST /config, and entity writes answer
	// 405 as in Kong.
	DBLess bool
	// Server returns the proxy's connection counters for GET /status's
	// server block. Nil reports zeros.
	Server func() ServerStats
	// Logger receives unexpected errors and panics. Nil discards them.
	Logger *slog.Logger
	// Metrics, when set, serves GET /metrics (Prometheus' exposition), as
	// Kong's prometheus plugin adds it to the Admin API. Nil leaves the
	// endpoint out.
	Metrics http.Handler
}

// ServerStats are the proxy's connection counters, Kong's server block of
// GET /status (nginx's stub_status).
type ServerStats struct {
	TotalRequests       int64 `json:"total_requests"`
	ConnectionsActive   int64 `json:"connections_active"`
	ConnectionsAccepted int64 `json:"connections_accepted"`
	ConnectionsHandled  int64 `json:"connections_handled"`
	ConnectionsReading  int64 `json:"connections_reading"`
	ConnectionsWriting  int64 `json:"connections_writing"`
	ConnectionsWaiting  int64 `json:"connections_waiting"`
}

// PluginValidator checks plugin configurations. It is implemented by
// *plugins.Registry.
type PluginValidator interface {
	// Validate returns the config with defaults applied, field errors keyed
	// by config field name, or an error when no plugin has that name.
	Validate(name string, config json.RawMessage) (json.RawMessage, map[string]string, error)
	// Names returns the names of the available plugins.
	Names() []string
}

// Invalidator is the cluster side of every write (implemented by
// gateway/cluster).
type Invalidator interface {
	// Events returns the cluster events to write in the same store.Apply as
	// the entity change.
	Events(ctx context.Context, keys []entity.CacheKey) []store.Event
	// Invalidated applies keys on this node at once, after the Apply
	// committed.
	Invalidated(ctx context.Context, keys []entity.CacheKey)
}

// cacheView is what the /cache endpoints need of *cache.Cache.
type cacheView interface {
	Peek(key entity.CacheKey) (e entity.Entity, negative bool, ok bool)
	Invalidate(key entity.CacheKey)
	Purge()
	Keys(prefix string, limit int) []string
}

// handler is the Admin API. It is safe for concurrent use.
type handler struct {
	store     store.Store
	cache     cacheView // nil when Options.Cache is nil
	plugins   PluginValidator
	cluster   Invalidator
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	endpoints []endpoint
	server    string // the Server header: "sluice/<version>"
}

// New returns the Admin API handler.
func New(opts Options) http.Handler {
	h := &handler{store: opts.Store, plugins: opts.Plugins, cluster: opts.Cluster,
		opts: opts, log: opts.Logger, now: time.Now}
	if opts.Cache != nil {
		h.cache = opts.Cache
	}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h.endpoints = h.routes()
	h.server = "sluice"
	if opts.Version != "" {
		h.server += "/" + opts.Version
	}
	return h
}

// ServeHTTP dispatches r to its endpoint and turns the endpoint's error into
// the client's answer. A panic answers 500 and is logged.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &statusWriter{ResponseWriter: w}
	w.Header().Set("Server", h.server)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.fail(rw, r, unexpected(fmt.Errorf("admin: panic: %v", p)))
		}
	}()
	if err := h.dispatch(rw, r); err != nil {
		h.fail(rw, r, err)
	}
}

// fail answers err unless a response was already started.
func (h *handler) fail(w *statusWriter, r *http.Request, err error) {
	ae := storeError(err, nil)
	if ae.cause != nil || ae.status >= 500 {
		h.log.Error("admin: request failed", "method", r.Method, "path", r.URL.Path,
			"status", ae.status, "error", err)
	}
	if w.wrote {
		return
	}
	writeJSON(w, ae.status, ae.body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"message":"An unexpected error occurred"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// statusWriter records whether the response was started.
type statusWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

var (
	_ http.Handler = (*handler)(nil)
	_ cacheView    = (*cache.Cache)(nil)
)
