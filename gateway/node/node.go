// Package node assembles one gateway node: the entity cache over the
// chosen backend, the route table and plugin snapshots rebuilt on
// invalidation, the cluster event loops, and the proxy, Admin API and status
// listeners. cmd/sluice builds the concrete datastore and cache backend and
// hands them in; tests do the same with real ones.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/gateway/admin"
	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/cluster"
	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	"github.com/sluice-gw/sluice/gateway/plugins/ratelimiting"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttermination"
	"github.com/sluice-gw/sluice/gateway/proxy"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Options holds a node's dependencies. Config, Store and Backend are
// required.
type Options struct {
	Config  *config.Config
	Store   store.Store
	Backend cachebackends.Backend
	// Version is reported in GET /, Via and Server headers.
	Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registry receives every metric and serves /metrics. Nil means a new,
	// private registry.
	Registry *prometheus.Registry
	// TracerProvider creates the node's spans; nil means none.
	TracerProvider trace.TracerProvider
}

// Node is one gateway node.
type Node struct {
	cfg      *config.Config
	st       store.Store
	log      *slog.Logger
	reg      *prometheus.Registry
	nodeID   string
	cache    *cache.Cache
	cluster  *cluster.Cluster
	plugins  *plugins.Registry
	proxy    *proxy.Proxy
	admin    http.Handler
	status   http.Handler
	routes   *rebuilder
	pluginsR *rebuilder
	metrics  *metrics

	draining atomic.Bool
	cancel   context.CancelFunc
	servers  []*http.Server
	addrs    map[string]string
}

// New assembles a node. It starts nothing: see Start.
func New(opts Options) (*Node, error) {
	cfg := opts.Config
	if cfg == nil || opts.Store == nil || opts.Backend == nil {
		return nil, errors.New("node: config, store and cache backend are required")
	}
	n := &Node{cfg: cfg, st: opts.Store, log: opts.Logger, reg: opts.Registry, nodeID: cfg.NodeID}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.reg == nil {
		n.reg = prometheus.NewRegistry()
	}
	if n.nodeID == "" {
		n.nodeID = uuid.NewString()
	}
	n.metrics = newMetrics(n.reg)
	n.cache = cache.New(opts.Backend, n.load, cache.Options{
		TTL: cfg.DBCacheTTL, NegTTL: cfg.NegTTL(), ResurrectTTL: cfg.DBResurrectTTL, Backend: cfg.CacheBackend,
	})
	n.reg.MustRegister(newCacheCollector(n.cache, cfg.CacheBackend))
	var err error
	n.cluster, err = cluster.New(opts.Store, n, cluster.Options{
		NodeID: n.nodeID, Frequency: cfg.DBUpdateFrequency, Propagation: cfg.DBUpdatePropagation,
		Push: cfg.DBUpdatePush, Logger: n.log, TracerProvider: opts.TracerProvider, Registerer: n.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.plugins = plugins.NewRegistry(keyauth.New(credentials{n.cache}), ratelimiting.New(), requesttermination.New())
	n.proxy = proxy.New(proxy.Options{
		Version: opts.Version, TracerProvider: opts.TracerProvider, OnResponse: n.metrics.observe,
	})
	n.routes = newRebuilder("routes", n.log, n.buildRouter)
	n.pluginsR = newRebuilder("plugins", n.log, n.buildPlugins)
	host, _ := os.Hostname()
	n.admin = admin.New(admin.Options{
		Store: opts.Store, Cache: n.cache, Plugins: n.plugins, Cluster: n.cluster,
		NodeID: n.nodeID, Version: opts.Version, Hostname: host, Configuration: cfg.Public(),
		Reachable: n.reachable, Logger: n.log,
	})
	n.status = n.statusHandler()
	return n, nil
}

// NodeID returns the node's id in cluster events.
func (n *Node) NodeID() string { return n.nodeID }

// Proxy returns the proxy handler.
func (n *Node) Proxy() http.Handler { return n.proxy }

// Admin returns the Admin API handler, with /metrics.
func (n *Node) Admin() http.Handler { return n.withMetrics(n.admin) }

// Cache returns the node's entity cache.
func (n *Node) Cache() *cache.Cache { return n.cache }

// Start builds the route table and plugin set, starts the cluster loops and
// serves the proxy, Admin API and status listeners. It returns once the
// node is ready to serve, or with the first error.
func (n *Node) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.routes.run(bg)
	go n.pluginsR.run(bg)
	if err := n.cluster.Start(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.rebuildAll(ctx); err != nil {
		return fmt.Errorf("node: cannot build the route table and plugins: %w", err)
	}
	n.addrs = make(map[string]string)
	listeners := []struct {
		name, key, addr string
		h               http.Handler
	}{
		{"proxy", "proxy_listen", n.cfg.ProxyListen, n.proxy},
		{"admin", "admin_listen", n.cfg.AdminListen, n.Admin()},
		{"status", "status_listen", n.cfg.StatusListen, n.status},
	}
	for _, l := range listeners {
		if l.addr == "off" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("node: cannot listen on %s=%s: %w", l.key, l.addr, err)
		}
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
		n.servers = append(n.servers, srv)
		n.addrs[l.name] = ln.Addr().String()
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("listener stopped", "listener", l.key, "err", err)
			}
		}()
	}
	n.log.Info("node started", "node_id", n.nodeID, "proxy", n.addrs["proxy"], "admin", n.addrs["admin"],
		"status", n.addrs["status"], "database", n.cfg.Database, "cache_backend", n.cfg.CacheBackend,
		"db_update_frequency", n.cfg.DBUpdateFrequency)
	return nil
}

// Addr returns the address a listener ("proxy", "admin", "status") is
// bound to, after Start.
func (n *Node) Addr(listener string) string { return n.addrs[listener] }

// Shutdown reports draining on /status/ready, stops accepting, waits for
// in-flight requests until ctx is done, and stops the background loops.
func (n *Node) Shutdown(ctx context.Context) error {
	n.draining.Store(true)
	var errs []error
	for _, srv := range n.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.cluster.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.proxy.CloseIdleConnections()
	return errors.Join(errs...)
}

// Invalidate implements cluster.Applier: it purges keys from the cache and
// rebuilds the snapshots they name, waiting (boundedly) for the rebuild so
// that the next request sees the change.
func (n *Node) Invalidate(ctx context.Context, keys []entity.CacheKey) {
	var routesGen, pluginsGen uint64
	for _, k := range keys {
		switch k {
		case entity.RouterVersion:
			routesGen = n.routes.request()
		case entity.PluginsVersion:
			pluginsGen = n.pluginsR.request()
		default:
			n.cache.Invalidate(k)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, rebuildWait)
	defer cancel()
	if routesGen > 0 {
		if err := n.routes.wait(ctx, routesGen); err != nil {
			n.log.Warn("route table rebuild still pending", "err", err)
		}
	}
	if pluginsGen > 0 {
		if err := n.pluginsR.wait(ctx, pluginsGen); err != nil {
			n.log.Warn("plugin set rebuild still pending", "err", err)
		}
	}
}

// InvalidateAll implements cluster.Applier.
func (n *Node) InvalidateAll(ctx context.Context) {
	n.cache.Purge()
	if err := n.rebuildAll(ctx); err != nil {
		n.log.Warn("rebuild after a full purge is still pending", "err", err)
	}
}

// rebuildWait bounds how long a write waits for the snapshots it changed.
const rebuildWait = 10 * time.Second

func (n *Node) rebuildAll(ctx context.Context) error {
	rg, pg := n.routes.request(), n.pluginsR.request()
	ctx, cancel := context.WithTimeout(ctx, rebuildWait)
	defer cancel()
	return errors.Join(n.routes.wait(ctx, rg), n.pluginsR.wait(ctx, pg))
}

// load is the cache's Loader: the only place the proxy's lookups reach the
// datastore.
func (n *Node) load(ctx context.Context, key entity.CacheKey) (entity.Entity, error) {
	var (
		rec store.Record
		err error
	)
	start := time.Now()
	if key.Kind == entity.KindKeyAuth {
		rec, err = n.st.GetByUnique(ctx, key.Kind, "key", key.ID)
	} else {
		rec, err = n.st.Get(ctx, key.Kind, key.ID)
	}
	n.metrics.query(string(key.Kind), start, err)
	if err != nil {
		return nil, err
	}
	return entity.Decode(key.Kind, rec.Data)
}

func (n *Node) reachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var err error
	if p, ok := n.st.(store.Pinger); ok {
		err = p.Ping(ctx)
	} else {
		_, err = n.st.Now(ctx)
	}
	n.metrics.setReachable(err == nil)
	return err == nil
}

// credentials adapts the entity cache to keyauth.Credentials.
type credentials struct{ c *cache.Cache }

func (cr credentials) Credential(ctx context.Context, key string) (*entity.KeyAuthCredential, error) {
	e, _, err := cr.c.Get(ctx, entity.CacheKey{Kind: entity.KindKeyAuth, ID: key})
	if e == nil || err != nil {
		return nil, err
	}
	return e.(*entity.KeyAuthCredential), nil
}

func (cr credentials) Consumer(ctx context.Context, id string) (*entity.Consumer, error) {
	e, _, err := cr.c.Get(ctx, entity.CacheKey{Kind: entity.KindConsumer, ID: id})
	if e == nil || err != nil {
		return nil, err
	}
	return e.(*entity.Consumer), nil
}

var (
	_ cluster.Applier       = (*Node)(nil)
	_ keyauth.Credentials   = credentials{}
	_ admin.PluginValidator = (*plugins.Registry)(nil)
)
