package cache

import (
	"sync/atomic"
	_ "unsafe" // for go:linkname

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/gateway/entity"
)

// Stats is a point-in-time snapshot of a Cache's counters, shaped for a
// Prometheus collector that reads it at scrape time: counters per kind,
// gauges for the entry counts, and the backend's own figures.
type Stats struct {
	// Backend is Options.Backend.
	Backend string
	// Kinds holds one row per kind, in a fixed order; keys of kinds the
	// gateway does not know are counted under Kind "other".
	Kinds []KindStats
	// Entries counts the decoded entities held in L1 (expired ones
	// included until evicted).
	Entries int64
	// NegativeEntries counts the cached misses.
	NegativeEntries int64
	// BackendStats holds the backend's figures; HasBackendStats is false
	// when the backend is not a cachebackends.Statser.
	BackendStats    cachebackends.Stats
	HasBackendStats bool
}

// KindStats holds the monotonic counters of one kind.
type KindStats struct {
	Kind entity.Kind
	// Hits counts Gets answered with a cached entity (L1 or backend).
	Hits uint64
	// Misses counts loads from the datastore.
	Misses uint64
	// NegativeHits counts Gets answered with a cached miss.
	NegativeHits uint64
	// StaleHits counts expired values served because the datastore failed.
	StaleHits uint64
	// LoadErrors counts loads that failed with nothing stale to serve.
	LoadErrors uint64
}

// kindCounters is padded to a cache line so that two kinds' counters do not
// share one.
type kindCounters struct {
	hits, misses, negativeHits, staleHits, loadErrors atomic.Uint64
	_                                                 [24]byte
}

const (
	numKinds = 11
	// numStripes is a power of two; Ps beyond it share stripes.
	numStripes = 16
)

// counters returns the counters of kind (a kindIndex) in the calling P's
// stripe. Striping by key hash would send every hit of a hot key to one
// stripe, and the line would bounce between the cores hitting it; a P's
// stripe is written by whichever core runs that P, so it stays put. The P
// may change between procUnpin and the add; the add is atomic, so that
// costs at most a shared line now and then, never a lost count.
func (c *Cache) counters(kind int) *kindCounters {
	p := procPin()
	procUnpin()
	return &c.stats[p&(numStripes-1)][kind]
}

// procPin and procUnpin are the runtime's, as sync.Pool uses them: the
// only way to learn the current P's id. The runtime keeps them linkable
// (go.dev/issue/67401).
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// kindNames orders the rows of Stats.Kinds; kindIndex maps a kind to its row.
var kindNames = [numKinds]entity.Kind{
	entity.KindCertificate, entity.KindService, entity.KindRoute, entity.KindConsumer, entity.KindPlugin,
	entity.KindKeyAuth, entity.KindBasicAuth, entity.KindJWT, entity.RouterVersion.Kind, entity.PluginsVersion.Kind, "other",
}

func kindIndex(k entity.Kind) int {
	switch k {
	case entity.KindCertificate:
		return 0
	case entity.KindService:
		return 1
	case entity.KindRoute:
		return 2
	case entity.KindConsumer:
		return 3
	case entity.KindPlugin:
		return 4
	case entity.KindKeyAuth:
		return 5
	case entity.KindBasicAuth:
		return 6
	case entity.KindJWT:
		return 7
	case "router":
		return 8
	case "plugins_iterator":
		return 9
	}
	return 10
}

// Stats returns a snapshot of the counters. It is safe to call at any time
// and costs one pass over the shards.
func (c *Cache) Stats() Stats {
	s := Stats{Backend: c.opts.Backend, Kinds: make([]KindStats, numKinds), NegativeEntries: c.neg.len()}
	for i := range s.Kinds {
		ks := &s.Kinds[i]
		ks.Kind = kindNames[i]
		for j := range c.stats {
			k := &c.stats[j][i]
			ks.Hits += k.hits.Load()
			ks.Misses += k.misses.Load()
			ks.NegativeHits += k.negativeHits.Load()
			ks.StaleHits += k.staleHits.Load()
			ks.LoadErrors += k.loadErrors.Load()
		}
	}
	if c.l1 != nil {
		s.Entries = c.l1.len()
	}
	if st, ok := c.backend.(cachebackends.Statser); ok {
		s.BackendStats, s.HasBackendStats = st.Stats(), true
	}
	return s
}
