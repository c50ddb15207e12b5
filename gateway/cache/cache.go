// Package cache is the gateway's entity cache: a decoded-object layer (L1)
// over a cachebackends.Backend (L2), with negative caching, one datastore
// load per key at a time, and stale values resurrected while the datastore
// errors. It is the "smart layer" above the dumb byte backends. It also
// provides the Loader over a datastore (StoreLoader), typed lookups for the
// key-auth plugin, the sluice.cache.get spans and the Prometheus collector
// of its statistics.
package cache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sort"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Result says how a Get was answered.
type Result uint8

// The results.
const (
	// Miss: the value was loaded from the datastore (found or not found).
	Miss Result = iota
	// Hit: a cached entity.
	Hit
	// NegativeHit: a cached "does not exist".
	NegativeHit
	// StaleHit: the datastore failed and an expired value was served
	// (resurrected for Options.ResurrectTTL).
	StaleHit
)

// Loader loads the entity for key from the datastore. It returns an error
// wrapping store.ErrNotFound when there is none (the miss is cached), or any
// other error when the datastore fails (nothing is cached).
type Loader func(ctx context.Context, key entity.CacheKey) (entity.Entity, error)

// Options configures a Cache. The zero value means Kong's defaults where
// noted.
type Options struct {
	// TTL is how long an entity stays cached (db_cache_ttl); 0 never expires.
	TTL time.Duration
	// NegTTL is how long a miss stays cached (db_cache_neg_ttl); 0 never
	// expires.
	NegTTL time.Duration
	// ResurrectTTL is how long an expired value is served again when the
	// datastore errors (db_resurrect_ttl); 0 disables resurrection.
	ResurrectTTL time.Duration
	// NegativeEntries bounds the number of cached misses, kept apart from
	// hits so that floods of unknown keys cannot evict them. 0 means 100000;
	// a negative value disables negative caching.
	NegativeEntries int
	// L1Entries bounds the decoded-object layer. 0 means 100000; a negative
	// value disables it (every hit decodes from the backend).
	L1Entries int
	// Backend names the backend in stats and metrics labels.
	Backend string
	// TracerProvider creates a sluice.cache.get span for each Get made in
	// a traced request; nil means none.
	TracerProvider trace.TracerProvider
}

// Cache is safe for concurrent use.
//
// Positive entries live in l1 (decoded) and in the backend (JSON behind an
// 8-byte expiry header, kept ResurrectTTL past expiry so a stale copy can
// be resurrected); misses live only in neg. Storing one kind of entry for a
// key removes the other.
type Cache struct {
	backend cachebackends.Backend
	load    Loader
	opts    Options
	tracer  trace.Tracer // nil when tracing is off
	l1      *table       // nil when Options.L1Entries < 0
	neg     *table
	flight  flight
	// gen counts invalidations. A load stores its result only if gen has
	// not moved since the load began, so that a value read from the
	// datastore before an invalidation cannot be cached after it.
	gen  atomic.Uint64
	seed maphash.Seed
	// stats is striped by P (see counters) so that two cores counting
	// hits of one kind, even of one hot key, do not write one cache line.
	stats [numStripes][numKinds]kindCounters
	now   func() time.Time
	// beforeStore, when set (tests only), runs between a load's check of
	// gen and its store.
	beforeStore func(entity.CacheKey)
}

// New returns a Cache over backend that loads misses with load.
func New(backend cachebackends.Backend, load Loader, opts Options) *Cache {
	if opts.NegativeEntries == 0 {
		opts.NegativeEntries = 100000
	}
	if opts.L1Entries == 0 {
		opts.L1Entries = 100000
	}
	c := &Cache{backend: backend, load: load, opts: opts, seed: maphash.MakeSeed(), now: time.Now}
	if opts.TracerProvider != nil {
		c.tracer = opts.TracerProvider.Tracer("github.com/sluice-gw/sluice/gateway/cache")
	}
	if opts.NegativeEntries > 0 {
		c.neg = newTable(opts.NegativeEntries)
	}
	if opts.L1Entries > 0 {
		c.l1 = newTable(opts.L1Entries)
	}
	return c
}

// Get returns the entity for key: from the cache, or loaded (once, however
// many goroutines ask at the same time). A nil entity with a nil error means
// the entity does not exist. The hit path does not allocate, unless the
// request is traced: then the lookup is a span (see tracing.go).
func (c *Cache) Get(ctx context.Context, key entity.CacheKey) (entity.Entity, Result, error) {
	if c.tracer != nil && trace.SpanFromContext(ctx).IsRecording() {
		return c.tracedGet(ctx, key)
	}
	return c.get(ctx, key)
}

func (c *Cache) get(ctx context.Context, key entity.CacheKey) (entity.Entity, Result, error) {
	h := hash(c.seed, key)
	if c.l1 != nil {
		if en := c.l1.get(key, h); en != nil && c.fresh(en) {
			c.counters(int(en.kind)).hits.Add(1)
			return en.e, Hit, nil
		}
	}
	if en := c.neg.get(key, h); en != nil && c.fresh(en) {
		c.counters(int(en.kind)).negativeHits.Add(1)
		return nil, NegativeHit, nil
	}
	st := c.counters(kindIndex(key.Kind))
	if e, fresh, ok := c.getL2(key); ok && fresh {
		c.setL1(key, h, e, c.expiry(c.opts.TTL))
		st.hits.Add(1)
		return e, Hit, nil
	}
	return c.loadShared(ctx, key, h, st)
}

// Peek returns what the cache holds for key without loading: the entity
// (nil for a cached miss), whether it is a cached miss, and whether
// anything is cached at all. Expired entries count as not cached.
func (c *Cache) Peek(key entity.CacheKey) (e entity.Entity, negative bool, ok bool) {
	h := hash(c.seed, key)
	if c.l1 != nil {
		if en := c.l1.get(key, h); en != nil && c.fresh(en) {
			return en.e, false, true
		}
	}
	if en := c.neg.get(key, h); en != nil && c.fresh(en) {
		return nil, true, true
	}
	if e, fresh, ok := c.getL2(key); ok && fresh {
		return e, false, true
	}
	return nil, false, false
}

// Invalidate removes key (hit or miss) from every layer.
func (c *Cache) Invalidate(key entity.CacheKey) {
	c.gen.Add(1)
	ks := key.String()
	c.flight.forget(ks)
	h := hash(c.seed, key)
	c.l1.delete(key, h)
	c.neg.delete(key, h)
	c.backend.Delete([]byte(ks))
}

// Purge removes everything.
func (c *Cache) Purge() {
	c.gen.Add(1)
	c.l1.clear()
	c.neg.clear()
	c.backend.Clear()
}

// Keys returns up to limit cached keys (String form) that start with prefix,
// sorted; limit <= 0 means no limit. It lists L1 and the cached misses, plus
// the backend's keys when the backend is a cachebackends.Ranger. Keys may
// include expired entries that have not been evicted yet.
func (c *Cache) Keys(prefix string, limit int) []string {
	var ks []string
	if c.l1 != nil {
		ks = c.l1.keys(ks, prefix)
	}
	ks = c.neg.keys(ks, prefix)
	if r, ok := c.backend.(cachebackends.Ranger); ok {
		r.Range(func(k []byte) bool {
			if len(k) >= len(prefix) && string(k[:len(prefix)]) == prefix {
				ks = append(ks, string(k))
			}
			return true
		})
	}
	sort.Strings(ks)
	ks = dedup(ks)
	if limit > 0 && len(ks) > limit {
		ks = ks[:limit]
	}
	return ks
}

// Close releases the backend's resources (a Redis connection pool, a
// cache's goroutines) when it is a cachebackends.Closer, and does nothing
// otherwise. The Cache must not be used afterwards: lookups then miss and
// load from the datastore every time.
func (c *Cache) Close() error {
	if cl, ok := c.backend.(cachebackends.Closer); ok {
		return cl.Close()
	}
	return nil
}

// loadShared runs one load per key at a time; callers that ask meanwhile
// wait for its result, each until its own ctx is done.
func (c *Cache) loadShared(ctx context.Context, key entity.CacheKey, h uint64, st *kindCounters) (entity.Entity, Result, error) {
	o, err := c.flight.do(ctx, key.String(), func() (outcome, error) {
		// The load serves every waiter, so the first caller's
		// cancellation must not fail it; the store bounds its own time.
		return c.loadOnce(context.WithoutCancel(ctx), key, h, st)
	})
	if err != nil {
		return nil, Miss, err
	}
	return o.e, o.res, nil
}

type outcome struct {
	e   entity.Entity
	res Result
}

// loadOnce runs inside the flight. It checks the cache again first: a
// goroutine that missed just before another goroutine's flight stored the
// value would otherwise start a second flight and load the key twice:
//
//	G1: Get misses          G2: Get misses
//	G1: flight loads, stores, ends
//	                         G2: flight starts -> must find G1's value
func (c *Cache) loadOnce(ctx context.Context, key entity.CacheKey, h uint64, st *kindCounters) (outcome, error) {
	gen := c.gen.Load()
	if c.l1 != nil {
		if en := c.l1.get(key, h); en != nil && c.fresh(en) {
			st.hits.Add(1)
			return outcome{en.e, Hit}, nil
		}
	}
	if en := c.neg.get(key, h); en != nil && c.fresh(en) {
		st.negativeHits.Add(1)
		return outcome{nil, NegativeHit}, nil
	}
	stale, staleNeg, hasStale := c.stale(key, h)
	e, err := c.load(ctx, key)
	st.misses.Add(1)
	switch {
	case err == nil && e == nil, errors.Is(err, store.ErrNotFound):
		c.storeUnlessInvalidated(gen, key, h, func() { c.setNegative(key, h, c.expiry(c.opts.NegTTL)) })
		return outcome{nil, Miss}, nil
	case err != nil && hasStale && c.opts.ResurrectTTL > 0:
		st.staleHits.Add(1)
		exp := c.expiry(c.opts.ResurrectTTL)
		c.storeUnlessInvalidated(gen, key, h, func() {
			if staleNeg {
				c.setNegative(key, h, exp)
			} else {
				c.setPositive(key, h, stale, exp)
			}
		})
		return outcome{stale, StaleHit}, nil
	case err != nil:
		st.loadErrors.Add(1)
		return outcome{}, fmt.Errorf("cache: cannot load %s: %w", key, err)
	}
	c.storeUnlessInvalidated(gen, key, h, func() { c.setPositive(key, h, e, c.expiry(c.opts.TTL)) })
	return outcome{e, Miss}, nil
}

// storeUnlessInvalidated runs store, which caches what a load read, unless
// an invalidation (or purge) happened since the load began at generation
// gen: the value read may predate the change that was invalidated.
//
// Checking gen before storing is not enough. The interleaving
//
//	load:       gen == g0 ✓
//	Invalidate:                 gen++ ; delete key
//	load:       store(old value)
//
// would leave the old value cached. So gen is checked again after storing,
// and a store that raced with an invalidation is undone. Undoing may also
// drop a fresher value another load stored meanwhile; that only costs a
// reload.
func (c *Cache) storeUnlessInvalidated(gen uint64, key entity.CacheKey, h uint64, store func()) {
	if c.gen.Load() != gen {
		return
	}
	if c.beforeStore != nil {
		c.beforeStore(key)
	}
	store()
	if c.gen.Load() != gen {
		c.l1.delete(key, h)
		c.neg.delete(key, h)
		c.backend.Delete([]byte(key.String()))
	}
}

// stale returns the expired value held for key, if any: an entity, or a
// miss (negative).
func (c *Cache) stale(key entity.CacheKey, h uint64) (e entity.Entity, negative, ok bool) {
	if c.l1 != nil {
		if en := c.l1.get(key, h); en != nil {
			return en.e, false, true
		}
	}
	if en := c.neg.get(key, h); en != nil {
		return nil, true, true
	}
	if e, _, ok := c.getL2(key); ok {
		return e, false, true
	}
	return nil, false, false
}

func (c *Cache) setPositive(key entity.CacheKey, h uint64, e entity.Entity, expires int64) {
	c.neg.delete(key, h)
	c.setL1(key, h, e, expires)
	data, err := json.Marshal(e)
	if err != nil {
		return // L1 still holds it; the backend only misses a copy
	}
	buf := make([]byte, 8+len(data))
	binary.BigEndian.PutUint64(buf, uint64(expires))
	copy(buf[8:], data)
	ttl := time.Duration(0)
	if expires != 0 {
		ttl = time.Duration(expires-c.now().UnixNano()) + c.opts.ResurrectTTL
	}
	// A value the backend refuses (too large, unreachable) stays in L1.
	_ = c.backend.Set([]byte(key.String()), buf, ttl)
}

func (c *Cache) setNegative(key entity.CacheKey, h uint64, expires int64) {
	c.l1.delete(key, h)
	c.backend.Delete([]byte(key.String()))
	c.neg.set(h, &entry{key: key, expires: expires})
}

func (c *Cache) setL1(key entity.CacheKey, h uint64, e entity.Entity, expires int64) {
	if c.l1 != nil {
		c.l1.set(h, &entry{key: key, e: e, expires: expires})
	}
}

// getL2 decodes the backend's value for key and says whether it is fresh.
// A value that cannot be decoded is deleted and reported absent.
func (c *Cache) getL2(key entity.CacheKey) (e entity.Entity, fresh, ok bool) {
	bk := []byte(key.String())
	buf, ok := c.backend.Get(bk)
	if !ok {
		return nil, false, false
	}
	if len(buf) < 8 {
		c.backend.Delete(bk)
		return nil, false, false
	}
	e, err := entity.Decode(key.Kind, buf[8:])
	if err != nil {
		c.backend.Delete(bk)
		return nil, false, false
	}
	exp := int64(binary.BigEndian.Uint64(buf))
	return e, exp == 0 || c.now().UnixNano() < exp, true
}

// fresh reports whether en has not expired. Entries that never expire
// (the default db_cache_ttl=0) do not read the clock; fresh stays small
// enough to inline into the hit path, unexpired is the clock's call.
func (c *Cache) fresh(en *entry) bool {
	return en.expires == 0 || c.unexpired(en.expires)
}

func (c *Cache) unexpired(expires int64) bool { return c.now().UnixNano() < expires }

// expiry returns the expiry time for ttl from now; 0 means never.
func (c *Cache) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return c.now().Add(ttl).UnixNano()
}

func dedup(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}
