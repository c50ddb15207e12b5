// Package cache is the gateway's entity cache: a decoded-object layer (L1)
// over a cachebackends.Backend (L2), with negative caching, one datastore
// load per key at a time, and stale values resurrected while the datastore
// errors. It is the "smart layer" above the dumb byte backends.
package cache

import (
	"context"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/gateway/entity"
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
	// hits so that floods of unknown keys cannot evict them. 0 means 100000.
	NegativeEntries int
	// L1Entries bounds the decoded-object layer. 0 means 100000; a negative
	// value disables it (every hit decodes from the backend).
	L1Entries int
	// Backend names the backend in stats and metrics labels.
	Backend string
}

// Cache is safe for concurrent use.
type Cache struct {
	// implementation pending (cache helper)
}

// New returns a Cache over backend that loads misses with load.
func New(backend cachebackends.Backend, load Loader, opts Options) *Cache {
	panic("cache: not implemented")
}

// Get returns the entity for key: from the cache, or loaded (once, however
// many goroutines ask at the same time). A nil entity with a nil error means
// the entity does not exist. The hit path does not allocate.
func (c *Cache) Get(ctx context.Context, key entity.CacheKey) (entity.Entity, Result, error) {
	panic("cache: not implemented")
}

// Peek returns what the cache holds for key without loading: the entity
// (nil for a cached miss), whether it is a cached miss, and whether
// anything is cached at all.
func (c *Cache) Peek(key entity.CacheKey) (e entity.Entity, negative bool, ok bool) {
	panic("cache: not implemented")
}

// Invalidate removes key (hit or miss) from every layer.
func (c *Cache) Invalidate(key entity.CacheKey) { panic("cache: not implemented") }

// Purge removes everything.
func (c *Cache) Purge() { panic("cache: not implemented") }

// Keys returns up to limit cached keys (String form) that start with prefix.
func (c *Cache) Keys(prefix string, limit int) []string { panic("cache: not implemented") }
