package node

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/proxy"
	"github.com/sluice-gw/sluice/gateway/proxymetrics"
	"github.com/sluice-gw/sluice/gateway/router"
	"github.com/sluice-gw/sluice/gateway/store"
)

// pageSize is the page size of the full reads behind a snapshot rebuild.
const pageSize = 1000

// buildRouter reads every route and service and swaps in a new route table.
// Routes that cannot be compiled are left out and logged; the others serve.
func (n *Node) buildRouter(ctx context.Context) error {
	memo := n.routeMemo.begin()
	services := make(map[string]*entity.Service)
	err := each(ctx, n.st, entity.KindService, memo, func(e entity.Entity) {
		s := e.(*entity.Service)
		services[s.ID] = s
	})
	if err != nil {
		return err
	}
	var targets []router.Target
	live := make(map[proxymetrics.Pair]bool)
	err = each(ctx, n.st, entity.KindRoute, memo, func(e entity.Entity) {
		r := e.(*entity.Route)
		t := router.Target{Route: r}
		if r.Service != nil {
			t.Service = services[r.Service.ID]
		}
		targets = append(targets, t)
		live[proxymetrics.PairOf(t.Service, r)] = true
	})
	if err != nil {
		return err
	}
	certs, err := n.clientCertificates(ctx, services, memo)
	if err != nil {
		return err
	}
	rt, err := router.New(targets)
	if err != nil {
		n.log.Warn("some routes were left out of the route table", "err", err)
	}
	n.proxy.SetClientCertificates(certs)
	n.proxy.SetRouter(rt)
	n.routeMemo.commit(memo)
	hosts := upstreamTargets(services)
	n.targets.Store(&hosts)
	n.metrics.routerRebuilt(rt.Len())
	n.observer.Prune(live)
	return nil
}

// clientCertificates reads the certificates that services present to
// their upstreams and parses those that changed since the last build.
func (n *Node) clientCertificates(ctx context.Context, services map[string]*entity.Service, memo *memoBuild) (proxy.ClientCertificates, error) {
	used := map[string]bool{}
	for _, s := range services {
		if s.ClientCertificate != nil {
			used[s.ClientCertificate.ID] = true
		}
	}
	certs := proxy.ClientCertificates{}
	parsed := make(map[*entity.Certificate]*proxy.ClientCertificate, len(used))
	err := each(ctx, n.st, entity.KindCertificate, memo, func(e entity.Entity) {
		c := e.(*entity.Certificate)
		if !used[c.ID] {
			return
		}
		cc, ok := n.parsedCerts[c] // the memo returns the same entity while its JSON is unchanged
		if !ok {
			var err error
			if cc, err = proxy.NewClientCertificate(c); err != nil {
				n.log.Warn("a client certificate cannot be used", "certificate", c.ID, "err", err)
				return
			}
		}
		parsed[c] = cc
		certs[c.ID] = cc
	})
	if err != nil {
		return nil, err
	}
	n.parsedCerts = parsed
	return certs, nil
}

// buildPlugins reads every plugin and swaps in a new plugin set.
func (n *Node) buildPlugins(ctx context.Context) error {
	var ps []*entity.Plugin
	memo := n.pluginMemo.begin()
	err := each(ctx, n.st, entity.KindPlugin, memo, func(e entity.Entity) { ps = append(ps, e.(*entity.Plugin)) })
	if err != nil {
		return err
	}
	n.pluginMemo.commit(memo)
	set, err := plugins.NewSet(n.plugins, ps)
	if err != nil {
		n.log.Warn("some plugins were left out of the plugin set", "err", err)
	}
	n.proxy.SetPlugins(set)
	return nil
}

// each calls fn for every entity of kind, reading page by page and
// decoding through memo.
func each(ctx context.Context, st store.Store, kind entity.Kind, memo *memoBuild, fn func(entity.Entity)) error {
	q := store.ListQuery{Kind: kind, Size: pageSize}
	for {
		page, err := st.List(ctx, q)
		if err != nil {
			return fmt.Errorf("cannot list %s: %w", kind, err)
		}
		for _, rec := range page.Records {
			e, err := memo.decode(kind, rec)
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

// decodeMemo holds what one snapshot's last successful build decoded, by
// kind and id with the JSON it came from, so that the next build decodes
// only the records whose JSON changed and reuses the rest. Between two
// rebuilds of a storm nearly every record is unchanged, and decoding was
// three quarters of a route-table rebuild (BenchmarkBuildRouter1k), which
// a node with one P runs while its requests wait. Reused entities are
// shared read-only, as every snapshot already shares them with requests.
//
// A snapshot's builds run one at a time on its rebuilder's goroutine; mu
// only makes that assumption safe to break.
type decodeMemo struct {
	mu   sync.Mutex
	last map[entity.CacheKey]memoEntry
}

type memoEntry struct {
	data []byte
	e    entity.Entity
}

// memoBuild is one build's view: the previous build's entries and the
// ones this build has read so far.
type memoBuild struct {
	prev, next map[entity.CacheKey]memoEntry
}

func (m *decodeMemo) begin() *memoBuild {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &memoBuild{prev: m.last, next: make(map[entity.CacheKey]memoEntry, len(m.last))}
}

// commit makes b's entries the reference for the next build; entities
// that b did not read (deleted ones) are dropped. A failed build does not
// commit, and the next one compares with the last successful one.
func (m *decodeMemo) commit(b *memoBuild) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = b.next
}

// decode returns rec's entity: the previous build's if its JSON is the
// same byte for byte, else a fresh decode.
func (b *memoBuild) decode(kind entity.Kind, rec store.Record) (entity.Entity, error) {
	k := entity.CacheKey{Kind: kind, ID: rec.ID}
	if old, ok := b.prev[k]; ok && bytes.Equal(old.data, rec.Data) {
		b.next[k] = old
		return old.e, nil
	}
	e, err := entity.Decode(kind, rec.Data)
	if err != nil {
		return nil, err
	}
	b.next[k] = memoEntry{data: rec.Data, e: e}
	return e, nil
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
