package node

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/router"
	"github.com/sluice-gw/sluice/gateway/store"
)

// pageSize is the page size of the full reads behind a snapshot rebuild.
const pageSize = 1000

// buildRouter reads every route and service and swaps in a new route table.
// Routes that cannot be compiled are left out and logged; the others serve.
func (n *Node) buildRouter(ctx context.Context) error {
	services := make(map[string]*entity.Service)
	err := each(ctx, n.st, entity.KindService, func(e entity.Entity) {
		s := e.(*entity.Service)
		services[s.ID] = s
	})
	if err != nil {
		return err
	}
	var targets []router.Target
	err = each(ctx, n.st, entity.KindRoute, func(e entity.Entity) {
		r := e.(*entity.Route)
		t := router.Target{Route: r}
		if r.Service != nil {
			t.Service = services[r.Service.ID]
		}
		targets = append(targets, t)
	})
	if err != nil {
		return err
	}
	rt, err := router.New(targets)
	if err != nil {
		n.log.Warn("some routes were left out of the route table", "err", err)
	}
	n.proxy.SetRouter(rt)
	hosts := upstreamTargets(services)
	n.targets.Store(&hosts)
	n.metrics.routerRebuilt(rt.Len())
	return nil
}

// buildPlugins reads every plugin and swaps in a new plugin set.
func (n *Node) buildPlugins(ctx context.Context) error {
	var ps []*entity.Plugin
	err := each(ctx, n.st, entity.KindPlugin, func(e entity.Entity) { ps = append(ps, e.(*entity.Plugin)) })
	if err != nil {
		return err
	}
	set, err := plugins.NewSet(n.plugins, ps)
	if err != nil {
		n.log.Warn("some plugins were left out of the plugin set", "err", err)
	}
	n.proxy.SetPlugins(set)
	return nil
}

// each calls fn for every entity of kind, reading page by page.
func each(ctx context.Context, st store.Store, kind entity.Kind, fn func(entity.Entity)) error {
	q := store.ListQuery{Kind: kind, Size: pageSize}
	for {
		page, err := st.List(ctx, q)
		if err != nil {
			return fmt.Errorf("cannot list %s: %w", kind, err)
		}
		for _, rec := range page.Records {
			e, err := entity.Decode(kind, rec.Data)
			if err != nil {
				return err
			}
			fn(e)
		}
		if page.Next == "" {
			return nil
		}
		q.Offset = page.Next
	}
}

// upstreamTarget is one host:port the proxy sends traffic to.
type upstreamTarget struct{ upstream, target string }

// upstreamTargets lists the distinct host:port of the services, sorted.
func upstreamTargets(services map[string]*entity.Service) []upstreamTarget {
	seen := make(map[upstreamTarget]bool)
	for _, s := range services {
		seen[upstreamTarget{upstream: s.Host, target: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}] = true
	}
	out := make([]upstreamTarget, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b upstreamTarget) int { return strings.Compare(a.target, b.target) })
	return out
}
