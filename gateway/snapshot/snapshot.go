// Package snapshot owns the immutable snapshots the proxy serves from (the
// route table and the plugin set) and keeps them up to date from
// invalidation keys: one entity key (route:<id>, service:<id>,
// plugin:<id>) reads that one entity and changes the snapshot in place of
// a full rebuild, at a cost that does not grow with the number of routes.
// A version key (router:version, plugins_iterator:version), start-up and
// RebuildAll (a purge after lost events) read everything instead. Each snapshot has one worker goroutine that
// coalesces changes; the proxy swaps each new snapshot in atomically, and
// requests never wait for one.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/proxy"
	"github.com/sluice-gw/sluice/gateway/router"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/internal/yield"
)

// Proxy receives the snapshots. proxy.Proxy implements it.
type Proxy interface {
	// SetClientCertificates is called before the SetRouter whose services
	// reference the certificates.
	SetClientCertificates(proxy.ClientCertificates)
	SetRouter(*router.Router)
	SetPlugins(*plugins.Set)
}

// Options configures Snapshots. The zero value of a field means the default
// its comment gives.
type Options struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics (see README.md); nil means none are
	// exported.
	Registerer prometheus.Registerer
	// OnRouteChanged, when set, is called on the route worker's goroutine,
	// after the swap, each time a route changes: was is its previous
	// version (with its service), now the new one; was.Route is nil for a
	// new route, now.Route nil when the route left the table. Callers prune
	// per-route state with it (metric series whose labels changed).
	OnRouteChanged func(was, now router.Target)
	// OnRebuilt, when set, is called after each full rebuild of the route
	// table with every route in it.
	OnRebuilt func(all []router.Target)
}

// Snapshots keeps a node's route table and plugin set. Start runs its
// workers; Invalidate and RebuildAll feed them.
type Snapshots struct {
	routes  *routeTable
	plugins *pluginSet
	rw, pw  *worker
	log     *slog.Logger
}

// Ticket identifies the snapshot generations that cover a set of changes;
// Wait waits for them.
type Ticket struct{ routes, plugins uint64 }

// New returns Snapshots reading st and handing every snapshot to p. reg
// configures the plugin entities. Nothing is built before Start.
func New(st store.Store, reg *plugins.Registry, p Proxy, opts Options) *Snapshots {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := newMetrics(opts.Registerer)
	s := &Snapshots{log: opts.Logger}
	s.routes = newRouteTable(st, p, m, opts)
	s.plugins = newPluginSet(st, reg, p, opts.Logger)
	s.rw = newWorker("routes", opts.Logger, m.timed("routes", s.routes.apply))
	s.pw = newWorker("plugins", opts.Logger, m.timed("plugins", s.plugins.apply))
	return s
}

// Start runs the workers until ctx is done and asks for the first full
// builds; see RebuildAll to wait for them.
func (s *Snapshots) Start(ctx context.Context) {
	go s.rw.run(ctx)
	go s.pw.run(ctx)
}

// Invalidate hands a batch of invalidation keys to the snapshots they
// concern and returns the Ticket that covers them. Keys of other entities
// are ignored. urgent marks a write made on this node, which no rate limit
// holds back.
//
// Every write emits its entity's key (entity.InvalidationKeys), which is
// applied by reading that entity. A version key (entity.RouterVersion,
// entity.PluginsVersion) names no entity: it asks for a full rebuild of
// its snapshot, as in Kong (no write of this version emits one; a node of
// an older version emitted one with each entity key).
func (s *Snapshots) Invalidate(keys []entity.CacheKey, urgent bool) Ticket {
	var routeKeys, pluginKeys []entity.CacheKey
	var routesFull, pluginsFull bool
	for _, k := range keys {
		switch {
		case k == entity.RouterVersion:
			routesFull = true
		case k == entity.PluginsVersion:
			pluginsFull = true
		case k.Kind == entity.KindRoute || k.Kind == entity.KindService || k.Kind == entity.KindCertificate:
			routeKeys = append(routeKeys, k)
		case k.Kind == entity.KindPlugin:
			pluginKeys = append(pluginKeys, k)
		}
	}
	var t Ticket
	if len(routeKeys) > 0 || routesFull {
		t.routes = s.rw.request(routeKeys, routesFull, urgent)
	}
	if len(pluginKeys) > 0 || pluginsFull {
		t.plugins = s.pw.request(pluginKeys, pluginsFull, urgent)
	}
	return t
}

// Wait blocks until the snapshots covering t are swapped in, or ctx is
// done.
func (s *Snapshots) Wait(ctx context.Context, t Ticket) error {
	var errs []error
	if t.routes > 0 {
		if err := s.rw.wait(ctx, t.routes); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: route table update still pending: %w", err))
		}
	}
	if t.plugins > 0 {
		if err := s.pw.wait(ctx, t.plugins); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: plugin set update still pending: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RebuildAll rebuilds both snapshots from everything in the datastore and
// waits for them (bounded by ctx).
func (s *Snapshots) RebuildAll(ctx context.Context) error {
	return s.Wait(ctx, Ticket{routes: s.rw.request(nil, true, true), plugins: s.pw.request(nil, true, true)})
}

// Ready reports whether both snapshots have been built once.
func (s *Snapshots) Ready() bool { return s.rw.built() && s.pw.built() }

// Upstreams returns the distinct host:port of the services, sorted by
// target (kong_upstream_target_health). Callers must not modify it.
func (s *Snapshots) Upstreams() []Upstream { return s.routes.upstreams() }

// pageSize is the page size of the full reads behind a rebuild.
const pageSize = 1000

// get reads one entity; found is false when it no longer exists. It
// first lets the requests that are ready run if y is spent: an apply
// reads its entities one after the other, on SQLite without a blocking
// call, so with one P a poll of a hundred changes (a storm's) would hold
// the P for milliseconds while requests wait.
func get(ctx context.Context, st store.Store, kind entity.Kind, id string, y *yield.Budget) (e entity.Entity, found bool, err error) {
	y.Check()
	rec, err := st.Get(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cannot read %s %s: %w", kind, id, err)
	}
	e, err = entity.Decode(kind, rec.Data)
	if err != nil {
		return nil, false, fmt.Errorf("cannot decode %s %s: %w", kind, id, err)
	}
	return e, true, nil
}
