// Package node wires one gateway node at start-up: the entity cache over
// the chosen backend, loading through the instrumented datastore
// (gateway/store/storeobs), the route table and plugin snapshots
// (gateway/snapshot) fed with invalidations, the cluster event loops, the proxy with its metrics
// observer (gateway/proxymetrics), and the proxy, Admin API and status
// listeners. cmd/sluice makes every choice (datastore, cache backend and
// the options that follow from them) and hands the results in; tests do
// the same with real ones. No request calls into the node: its call stack
// is proxy, plugins, cache, instrumented store, datastore.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/gateway/admin"
	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/cluster"
	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/basicauth"
	"github.com/sluice-gw/sluice/gateway/plugins/httplog"
	"github.com/sluice-gw/sluice/gateway/plugins/jwt"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	promplugin "github.com/sluice-gw/sluice/gateway/plugins/prometheus"
	"github.com/sluice-gw/sluice/gateway/plugins/ratelimiting"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttermination"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttransformer"
	"github.com/sluice-gw/sluice/gateway/proxy"
	"github.com/sluice-gw/sluice/gateway/proxymetrics"
	"github.com/sluice-gw/sluice/gateway/router"
	"github.com/sluice-gw/sluice/gateway/snapshot"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/storeobs"
	"github.com/sluice-gw/sluice/internal/yield"
)

// Options holds a node's dependencies. Config, Store and Backend are
// required.
type Options struct {
	Config *config.Config
	Store  store.Store
	// Backend is owned by the node from New on: Shutdown closes it when it
	// is a cachebackends.Closer.
	Backend cachebackends.Backend
	// Cache configures the entity cache over Backend: TTLs, entry bounds
	// (negative to disable a layer, as cache_backend = none does), the
	// backend's name in metrics. The node sets its TracerProvider.
	Cache cache.Options
	// DBSystem names the datastore in spans (db.system): "sqlite",
	// "postgres", "cassandra".
	DBSystem string
	// QueryTimeout bounds each lookup the cache makes in Store, network
	// included (pg_timeout, cassandra_timeout); 0 means none.
	QueryTimeout time.Duration
	// DBLess says Store is the node's own (database = off): the Admin API
	// replaces its entities whole through POST /config and refuses entity
	// writes.
	DBLess bool
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
	// conns counts the proxy listener's connections (GET /status).
	conns *connStats

	cfg    *config.Config
	st     store.Store
	log    *slog.Logger
	reg    *prometheus.Registry
	nodeID string
	// lookups is st as the cache's loader sees it: timed and traced.
	lookups  *storeobs.Store
	cache    *cache.Cache
	observer *proxymetrics.Observer
	cluster  *cluster.Cluster
	plugins  *plugins.Registry
	proxy    *proxy.Proxy
	admin    http.Handler
	status   http.Handler
	snaps    *snapshot.Snapshots
	gone     goneRoutes

	draining   atomic.Bool
	drainDelay time.Duration
	cancel     context.CancelFunc
	servers    []*http.Server // admin and status
	proxySrv   *fasthttp.Server
	addrs      map[string]string
}

// New assembles a node. It starts nothing: see Start.
func New(opts Options) (*Node, error) {
	cfg := opts.Config
	if cfg == nil || opts.Store == nil || opts.Backend == nil {
		return nil, errors.New("node: config, store and cache backend are required")
	}
	n := &Node{cfg: cfg, st: opts.Store, log: opts.Logger, reg: opts.Registry, nodeID: cfg.NodeID,
		drainDelay: cfg.ShutdownDrainDelay, conns: &connStats{}}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.reg == nil {
		n.reg = prometheus.NewRegistry()
	}
	if n.nodeID == "" {
		n.nodeID = uuid.NewString()
	}
	n.lookups = storeobs.New(opts.Store, storeobs.Options{Registerer: n.reg, TracerProvider: opts.TracerProvider,
		System: opts.DBSystem, Timeout: opts.QueryTimeout})
	copts := opts.Cache
	copts.TracerProvider = opts.TracerProvider
	n.cache = cache.New(opts.Backend, cache.StoreLoader(n.lookups), copts)
	n.reg.MustRegister(cache.NewCollector(n.cache))
	n.observer = proxymetrics.New(n.reg, proxymetrics.Options{KongCompat: cfg.PrometheusKongCompat})
	if cfg.PrometheusKongCompat {
		n.reg.MustRegister(newKongCollector(n.lookups.Reachable, n.conns, n.cache, func() []snapshot.Upstream { return n.snaps.Upstreams() }, n.nodeID, opts.Version, int64(cfg.MemCacheSize)))
	}
	var err error
	n.cluster, err = cluster.New(opts.Store, n, cluster.Options{
		NodeID: n.nodeID, Frequency: cfg.DBUpdateFrequency, Propagation: cfg.DBUpdatePropagation,
		Push: cfg.DBUpdatePush, Logger: n.log, TracerProvider: opts.TracerProvider, Registerer: n.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.plugins = pluginRegistry(opts.Store, pluginDeps{creds: n.cache, kong: n.observer, reg: n.reg, log: n.log})
	roots, err := trustedCAs(cfg.LuaSSLTrustedCertificate)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.proxy = proxy.New(proxy.Options{
		Version: opts.Version, TracerProvider: opts.TracerProvider, Observer: n.observer,
		Logger: n.log, UpstreamRootCAs: roots,
		MaxHeaderSize: int(cfg.ProxyMaxHeaderSize), MaxBodySize: int64(cfg.ClientMaxBodySize),
		BodyBufferSize: int(cfg.ClientBodyBufferSize),
		HeaderTimeout:  cfg.ClientHeaderTimeout, BodyTimeout: cfg.ClientBodyTimeout,
		KeepaliveTimeout: cfg.KeepaliveTimeout, SendTimeout: cfg.SendTimeout,
	})
	n.snaps = snapshot.New(opts.Store, n.plugins, n.proxy, snapshot.Options{
		Logger: n.log, Registerer: n.reg, OnRouteChanged: n.routeChanged, OnRebuilt: n.routesRebuilt,
	})
	host, _ := os.Hostname()
	n.admin = admin.Traced(opts.TracerProvider, "sluice.admin", admin.New(admin.Options{
		Store: opts.Store, Cache: n.cache, Plugins: n.plugins, Cluster: n.cluster,
		NodeID: n.nodeID, Version: opts.Version, Hostname: host, Configuration: cfg.Public(),
		Reachable: n.reachable, Logger: n.log, Server: n.conns.serverStats, DBLess: opts.DBLess,
		Metrics: n.metricsHandler(),
	}))
	n.status = n.statusHandler()
	return n, nil
}

// PluginRegistry returns the plugins a node on st has, for tools that
// validate plugin configurations without serving requests (sluice config).
func PluginRegistry(st store.Store) *plugins.Registry { return pluginRegistry(st, pluginDeps{}) }

// pluginDeps is what a node's plugins use of it; the zero value suits
// tools that only validate configurations.
type pluginDeps struct {
	creds *cache.Cache          // the auth plugins' credential lookups
	kong  promplugin.Exporter   // where the prometheus plugin records
	reg   prometheus.Registerer // http-log's metrics
	log   *slog.Logger          // http-log's warnings
}

// pluginRegistry returns the plugins of a node on st.
func pluginRegistry(st store.Store, d pluginDeps) *plugins.Registry {
	counters, _ := st.(store.Counters) // nil: rate-limiting refuses policy cluster
	return plugins.NewRegistry(keyauth.New(d.creds), basicauth.New(d.creds), jwt.New(d.creds),
		ratelimiting.New(ratelimiting.Options{Cluster: counters}), requesttermination.New(), requesttransformer.New(),
		httplog.New(httplog.Options{Registerer: d.reg, Logger: d.log}), promplugin.New(d.kong))
}

// NodeID returns the node's id in cluster events.
func (n *Node) NodeID() string { return n.nodeID }

// Admin returns the Admin API handler, with /metrics, behind admin_token
// when it is set.
func (n *Node) Admin() http.Handler { return admin.RequireToken(n.cfg.AdminToken, n.admin) }

// Cache returns the node's entity cache.
func (n *Node) Cache() *cache.Cache { return n.cache }

// Start builds the route table and plugin set, starts the cluster loops and
// serves the proxy, Admin API and status listeners. It returns once the
// node is ready to serve, or with the first error.
func (n *Node) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.snaps.Start(bg)
	if err := n.cluster.Start(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.rebuildAll(ctx); err != nil {
		return fmt.Errorf("node: cannot build the route table and plugins: %w", err)
	}
	n.addrs = make(map[string]string)
	n.warnOpenAdmin()
	if err := n.serveProxy(); err != nil {
		return err
	}
	listeners := []struct {
		name, key, addr string
		h               http.Handler
	}{
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

// warnOpenAdmin logs a warning when the Admin API listens beyond loopback
// with no admin_token: anyone who reaches it can reconfigure the gateway.
func (n *Node) warnOpenAdmin() {
	if n.cfg.AdminListen == "off" || n.cfg.AdminToken != "" || isLoopback(n.cfg.AdminListen) {
		return
	}
	n.log.Warn("the Admin API listens beyond loopback without admin_token: anyone who reaches it can "+
		"reconfigure this gateway; set admin_token or an admin_listen on 127.0.0.1", "admin_listen", n.cfg.AdminListen)
}

// isLoopback reports whether addr ("host:port") binds loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveProxy starts the proxy listener (proxy_listen) on fasthttp.
func (n *Node) serveProxy() error {
	if n.cfg.ProxyListen == "off" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.ProxyListen)
	if err != nil {
		return fmt.Errorf("node: cannot listen on proxy_listen=%s: %w", n.cfg.ProxyListen, err)
	}
	n.addrs["proxy"] = ln.Addr().String()
	ln = n.proxy.Listener(ln)
	srv := n.proxy.Server()
	// GET /status's server block and Kong's nginx connection families
	// (n.metrics.kong shares n.conns).
	proxyState := srv.ConnState
	ln = n.conns.listener(ln)
	srv.ConnState = func(c net.Conn, s fasthttp.ConnState) {
		proxyState(c, s)
		n.conns.connState(c, s)
	}
	n.proxySrv = srv
	go func() {
		if err := srv.Serve(ln); err != nil {
			n.log.Error("listener stopped", "listener", "proxy_listen", "err", err)
		}
	}()
	return nil
}

// Addr returns the address a listener ("proxy", "admin", "status") is
// bound to, after Start.
func (n *Node) Addr(listener string) string { return n.addrs[listener] }

// Shutdown reports draining on /status/ready, keeps serving for
// Options.DrainDelay (bounded by ctx), stops accepting, waits for in-flight
// requests until ctx is done, stops the background loops, and closes the
// cache backend and what the plugins hold open.
func (n *Node) Shutdown(ctx context.Context) error {
	n.draining.Store(true)
	if n.drainDelay > 0 {
		for _, srv := range n.servers {
			srv.SetKeepAlivesEnabled(false) // each response closes its connection
		}
		n.proxy.SetDraining(true)
		n.log.Info("draining: /status/ready answers 503 before the listeners close", "drain_delay", n.drainDelay)
		t := time.NewTimer(n.drainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	var errs []error
	if n.proxySrv != nil {
		if err := n.proxySrv.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("node: proxy listener: %w", err))
		}
	}
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
	n.proxy.Close()
	// Last, once nothing serves requests or applies events: closing the
	// backend earlier would turn those into misses against the datastore.
	if err := n.cache.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: cannot close cache_backend=%s: %w", n.cfg.CacheBackend, err))
	}
	if err := n.plugins.Close(); err != nil { // rate-limiting's Redis connections
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	return errors.Join(errs...)
}

// Invalidate implements cluster.Applier: it purges keys from the cache and
// hands them to the snapshots, waiting (boundedly) for them to apply so
// that the next request sees the change.
func (n *Node) Invalidate(ctx context.Context, keys []entity.CacheKey) {
	var y yield.Budget // a storm's poll purges hundreds of keys (see yield)
	for _, k := range keys {
		y.Check()
		if k != entity.RouterVersion && k != entity.PluginsVersion {
			n.cache.Invalidate(k)
		}
	}
	t := n.snaps.Invalidate(keys, cluster.Local(ctx))
	ctx, cancel := context.WithTimeout(ctx, rebuildWait)
	defer cancel()
	if err := n.snaps.Wait(ctx, t); err != nil {
		n.log.Warn("snapshot update still pending", "err", err)
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
	ctx, cancel := context.WithTimeout(ctx, rebuildWait)
	defer cancel()
	return n.snaps.RebuildAll(ctx)
}

// routeChanged is the snapshots' OnRouteChanged: the series of a
// (service, route) label pair that is gone or renamed are deleted, and
// again at each scrape for goneWindow (see goneRoutes).
func (n *Node) routeChanged(was, now router.Target) {
	var cur proxymetrics.Pair
	if now.Route != nil {
		cur = proxymetrics.PairOf(now.Service, now.Route)
		n.gone.live(cur)
	}
	if was.Route == nil {
		return
	}
	if old := proxymetrics.PairOf(was.Service, was.Route); now.Route == nil || cur != old {
		n.observer.Forget(old)
		n.gone.add(old)
	}
}

// routesRebuilt is the snapshots' OnRebuilt: the series of every pair not
// in the table are deleted.
func (n *Node) routesRebuilt(all []router.Target) {
	live := make(map[proxymetrics.Pair]bool, len(all))
	for _, t := range all {
		p := proxymetrics.PairOf(t.Service, t.Route)
		live[p] = true
		n.gone.live(p)
	}
	n.observer.Prune(live)
}

// goneWindow is how long the series of a pair that left the route table
// are deleted again at each scrape.
const goneWindow = 10 * time.Second

// goneRoutes holds the label pairs that left the route table recently. A
// request matched by the previous table and answered after its pair was
// forgotten records it again; forgetting the pair again before each
// scrape, for goneWindow, keeps such stragglers out of /metrics.
type goneRoutes struct {
	mu sync.Mutex
	m  map[proxymetrics.Pair]time.Time // when the pair left
}

func (g *goneRoutes) add(p proxymetrics.Pair) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[proxymetrics.Pair]time.Time)
	}
	g.m[p] = time.Now()
}

// live drops p: a route has it again.
func (g *goneRoutes) live(p proxymetrics.Pair) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, p)
}

// recent returns the pairs that left within goneWindow, forgetting older
// ones.
func (g *goneRoutes) recent() []proxymetrics.Pair {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []proxymetrics.Pair
	for p, at := range g.m {
		if time.Since(at) > goneWindow {
			delete(g.m, p)
			continue
		}
		out = append(out, p)
	}
	return out
}

// reachable checks the datastore for GET /status, recording the answer in
// sluice_datastore_reachable.
func (n *Node) reachable(ctx context.Context) bool { return n.lookups.Check(ctx) == nil }

var (
	_ cluster.Applier       = (*Node)(nil)
	_ keyauth.Credentials   = (*cache.Cache)(nil)
	_ basicauth.Credentials = (*cache.Cache)(nil)
	_ jwt.Credentials       = (*cache.Cache)(nil)
	_ admin.PluginValidator = (*plugins.Registry)(nil)
)
