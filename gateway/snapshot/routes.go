package snapshot

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/proxy"
	"github.com/sluice-gw/sluice/gateway/router"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/internal/yield"
)

// Upstream is one host:port the proxy sends traffic to.
type Upstream struct{ Host, Target string }

// routeTable is the route table's working state. Only the route worker's
// goroutine touches it, except upstreamList (atomic).
type routeTable struct {
	st    store.Store
	proxy Proxy
	m     *metrics
	log   *slog.Logger
	opts  Options

	b *router.Builder
	// yield spaces out this worker's reads for the requests (see get).
	yield yield.Budget
	// routes holds every route with its service, those the table left out
	// (invalid, stream-only) included, by route id.
	routes   map[string]router.Target
	services map[string]*entity.Service
	// bySvc holds the ids of the routes of each service id.
	bySvc map[string]map[string]struct{}
	// upstreamN counts the services per host:port; upstreamList is its
	// sorted key set, rebuilt when a key comes or goes.
	upstreamN    map[Upstream]int
	upstreamList atomic.Pointer[[]Upstream]
	// certs holds the parsed client certificates the services reference,
	// by certificate id, and certUse how many services reference each;
	// certsChanged says the proxy needs a new copy.
	certs        proxy.ClientCertificates
	certUse      map[string]int
	certsChanged bool
	// changed holds the OnRouteChanged calls of the apply in progress,
	// made once its table is swapped in (so that no request matches a
	// route after its change was reported).
	changed [][2]router.Target
}

func newRouteTable(st store.Store, p Proxy, m *metrics, opts Options) *routeTable {
	return &routeTable{st: st, proxy: p, m: m, log: opts.Logger, opts: opts}
}

// fullRebuildShare: a batch changing more than this share of the routes
// (and more than fullRebuildMin ids) is applied by a full rebuild, which
// then costs less than reading each changed entity on its own (see
// README.md, "Incremental or full").
const (
	fullRebuildShare = 4 // one quarter
	fullRebuildMin   = 256
)

// apply applies w to the table and swaps the new table in.
func (t *routeTable) apply(ctx context.Context, w work) (full bool, err error) {
	if t.b == nil || w.full || len(w.keys) > max(fullRebuildMin, len(t.routes)/fullRebuildShare) {
		return true, t.rebuild(ctx)
	}
	// Certificates, then services: a service of this batch may reference
	// a new certificate, a route a new service.
	for k := range w.keys {
		if k.Kind == entity.KindCertificate && t.certUse[k.ID] > 0 {
			if err := t.readCert(ctx, k.ID); err != nil {
				return false, err
			}
		}
	}
	for k := range w.keys {
		if k.Kind == entity.KindService {
			if err := t.applyService(ctx, k.ID); err != nil {
				return false, err
			}
		}
	}
	for k := range w.keys {
		if k.Kind == entity.KindRoute {
			if err := t.applyRoute(ctx, k.ID); err != nil {
				return false, err
			}
		}
	}
	t.swap()
	return false, nil
}

// applyRoute reads one route and puts it in the table, or takes it out.
func (t *routeTable) applyRoute(ctx context.Context, id string) error {
	e, found, err := get(ctx, t.st, entity.KindRoute, id, &t.yield)
	if err != nil {
		return err
	}
	if !found {
		t.remove(id)
		return nil
	}
	r := e.(*entity.Route)
	var svc *entity.Service
	if r.Service != nil {
		if svc = t.services[r.Service.ID]; svc == nil {
			// Created in a batch this node has not seen yet.
			if svc, err = t.readService(ctx, r.Service.ID); err != nil {
				return err
			}
		}
	}
	t.set(router.Target{Route: r, Service: svc})
	return nil
}

// applyService reads one service, refreshes it in the routes that point at
// it, and in the upstream list.
func (t *routeTable) applyService(ctx context.Context, id string) error {
	svc, err := t.readService(ctx, id)
	if err != nil {
		return err
	}
	if svc == nil {
		t.setService(id, nil)
	}
	for rid := range t.bySvc[id] {
		was := t.routes[rid]
		t.set(router.Target{Route: was.Route, Service: svc})
	}
	return nil
}

// readService reads service id into services (nil when it does not
// exist), with the client certificate it references.
func (t *routeTable) readService(ctx context.Context, id string) (*entity.Service, error) {
	e, found, err := get(ctx, t.st, entity.KindService, id, &t.yield)
	if err != nil || !found {
		return nil, err
	}
	svc := e.(*entity.Service)
	if c := svc.ClientCertificate; c != nil && t.certUse[c.ID] == 0 {
		if err := t.readCert(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	t.setService(id, svc)
	return svc, nil
}

// readCert reads and parses client certificate id (dropped when it does
// not exist or cannot be parsed, as a full rebuild does).
func (t *routeTable) readCert(ctx context.Context, id string) error {
	e, found, err := get(ctx, t.st, entity.KindCertificate, id, &t.yield)
	if err != nil {
		return err
	}
	t.certsChanged = true
	delete(t.certs, id)
	if found {
		t.parseCert(e.(*entity.Certificate))
	}
	return nil
}

// parseCert adds c to certs, or logs why it cannot be used.
func (t *routeTable) parseCert(c *entity.Certificate) {
	cc, err := proxy.NewClientCertificate(c)
	if err != nil {
		t.log.Warn("a client certificate cannot be used", "certificate", c.ID, "err", err)
		return
	}
	t.certs[c.ID] = cc
}

// set puts now in the builder and the working state.
func (t *routeTable) set(now router.Target) {
	id := now.Route.ID
	was, had := t.routes[id]
	if err := t.b.Set(now); err != nil {
		t.log.Warn("a route was left out of the route table", "err", err)
	}
	if had && was.Route.Service != nil {
		t.unlink(was.Route.Service.ID, id)
	}
	t.routes[id] = now
	if now.Route.Service != nil {
		if t.bySvc[now.Route.Service.ID] == nil {
			t.bySvc[now.Route.Service.ID] = make(map[string]struct{})
		}
		t.bySvc[now.Route.Service.ID][id] = struct{}{}
	}
	t.changed = append(t.changed, [2]router.Target{was, now})
}

// remove takes route id out of the table and the working state.
func (t *routeTable) remove(id string) {
	was, had := t.routes[id]
	if !had {
		return
	}
	t.b.Delete(id)
	delete(t.routes, id)
	if was.Route.Service != nil {
		t.unlink(was.Route.Service.ID, id)
	}
	t.changed = append(t.changed, [2]router.Target{was, {}})
}

func (t *routeTable) unlink(svcID, routeID string) {
	if rs := t.bySvc[svcID]; rs != nil {
		delete(rs, routeID)
		if len(rs) == 0 {
			delete(t.bySvc, svcID)
		}
	}
}

// setService records svc (nil: deleted) and counts its upstream and
// client certificate. The new service is counted before the old one is
// uncounted, so that what both reference stays.
func (t *routeTable) setService(id string, svc *entity.Service) {
	changed := false
	if svc != nil {
		u := upstreamOf(svc)
		if t.upstreamN[u]++; t.upstreamN[u] == 1 {
			changed = true
		}
		if c := svc.ClientCertificate; c != nil {
			t.certUse[c.ID]++
		}
	}
	if old := t.services[id]; old != nil {
		u := upstreamOf(old)
		if t.upstreamN[u]--; t.upstreamN[u] == 0 {
			delete(t.upstreamN, u)
			changed = true
		}
		if c := old.ClientCertificate; c != nil {
			if t.certUse[c.ID]--; t.certUse[c.ID] <= 0 {
				delete(t.certUse, c.ID)
				delete(t.certs, c.ID)
				t.certsChanged = true
			}
		}
	}
	if svc == nil {
		delete(t.services, id)
	} else {
		t.services[id] = svc
	}
	if changed {
		t.listUpstreams()
	}
}

// rebuild reads every service and route and replaces the working state
// and the table.
func (t *routeTable) rebuild(ctx context.Context) error {
	services := make(map[string]*entity.Service)
	err := store.Each(ctx, t.st, entity.KindService, pageSize, func(e entity.Entity) {
		t.yield.Check()
		s := e.(*entity.Service)
		services[s.ID] = s
	})
	if err != nil {
		return err
	}
	certUse := make(map[string]int)
	for _, s := range services {
		if s.ClientCertificate != nil {
			certUse[s.ClientCertificate.ID]++
		}
	}
	var certs []*entity.Certificate
	err = store.Each(ctx, t.st, entity.KindCertificate, pageSize, func(e entity.Entity) {
		t.yield.Check()
		if c := e.(*entity.Certificate); certUse[c.ID] > 0 {
			certs = append(certs, c)
		}
	})
	if err != nil {
		return err
	}
	var all []router.Target
	err = store.Each(ctx, t.st, entity.KindRoute, pageSize, func(e entity.Entity) {
		t.yield.Check()
		r := e.(*entity.Route)
		tg := router.Target{Route: r}
		if r.Service != nil {
			tg.Service = services[r.Service.ID]
		}
		all = append(all, tg)
	})
	if err != nil {
		return err
	}
	t.b, t.routes, t.services = router.NewBuilder(), make(map[string]router.Target, len(all)), make(map[string]*entity.Service, len(services))
	t.bySvc, t.upstreamN = make(map[string]map[string]struct{}), make(map[Upstream]int)
	t.certs, t.certUse, t.certsChanged = make(proxy.ClientCertificates, len(certs)), certUse, true
	for _, c := range certs {
		t.parseCert(c)
	}
	for id, s := range services {
		t.services[id] = s
		t.upstreamN[upstreamOf(s)]++
	}
	for _, tg := range all {
		t.set(tg)
	}
	t.changed = nil // OnRebuilt says what is there
	t.listUpstreams()
	t.swap()
	t.m.rebuilt(t.b.Len())
	if t.opts.OnRebuilt != nil {
		t.opts.OnRebuilt(all)
	}
	return nil
}

// swap hands a snapshot of the table to the proxy, then reports the
// changes it carries.
func (t *routeTable) swap() {
	if t.certsChanged {
		t.proxy.SetClientCertificates(maps.Clone(t.certs))
		t.certsChanged = false
	}
	t.proxy.SetRouter(t.b.Router())
	t.m.setRoutes(t.b.Len())
	changed := t.changed
	t.changed = nil
	if t.opts.OnRouteChanged != nil {
		for _, c := range changed {
			t.opts.OnRouteChanged(c[0], c[1])
		}
	}
}

func (t *routeTable) listUpstreams() {
	out := make([]Upstream, 0, len(t.upstreamN))
	for u := range t.upstreamN {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Upstream) int { return strings.Compare(a.Target, b.Target) })
	t.upstreamList.Store(&out)
}

func (t *routeTable) upstreams() []Upstream {
	if p := t.upstreamList.Load(); p != nil {
		return *p
	}
	return nil
}

func upstreamOf(s *entity.Service) Upstream {
	return Upstream{Host: s.Host, Target: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
}
