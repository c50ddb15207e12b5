package snapshot

import (
	"context"
	"log/slog"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/internal/yield"
)

// pluginSet is the plugin set's working state: every plugin entity by id.
// Only the plugin worker's goroutine touches it.
type pluginSet struct {
	st    store.Store
	reg   *plugins.Registry
	proxy Proxy
	log   *slog.Logger
	// yield spaces out this worker's reads for the requests (see get).
	yield yield.Budget
	// all is nil until the first full rebuild.
	all map[string]*entity.Plugin
}

func newPluginSet(st store.Store, reg *plugins.Registry, p Proxy, log *slog.Logger) *pluginSet {
	return &pluginSet{st: st, reg: reg, proxy: p, log: log}
}

// apply reads the changed plugins (every plugin for a full rebuild),
// builds a new Set from the entities in memory and swaps it in.
func (ps *pluginSet) apply(ctx context.Context, w work) (full bool, err error) {
	if ps.all == nil || w.full {
		all := make(map[string]*entity.Plugin)
		err := store.Each(ctx, ps.st, entity.KindPlugin, pageSize, func(e entity.Entity) {
			ps.yield.Check()
			p := e.(*entity.Plugin)
			all[p.ID] = p
		})
		if err != nil {
			return true, err
		}
		ps.all = all
		return true, ps.swap()
	}
	for k := range w.keys {
		e, found, err := get(ctx, ps.st, entity.KindPlugin, k.ID, &ps.yield)
		if err != nil {
			return false, err
		}
		if found {
			ps.all[k.ID] = e.(*entity.Plugin)
		} else {
			delete(ps.all, k.ID)
		}
	}
	return false, ps.swap()
}

// swap builds the Set of every plugin entity and hands it to the proxy.
// Entities that cannot be configured are left out and logged.
func (ps *pluginSet) swap() error {
	list := make([]*entity.Plugin, 0, len(ps.all))
	for _, p := range ps.all {
		list = append(list, p)
	}
	set, err := plugins.NewSet(ps.reg, list)
	if err != nil {
		ps.log.Warn("some plugins were left out of the plugin set", "err", err)
	}
	ps.proxy.SetPlugins(set)
	return nil
}
