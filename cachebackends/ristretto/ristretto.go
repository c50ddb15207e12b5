// Package ristretto adapts github.com/dgraph-io/ristretto/v2 to
// cachebackends.Backend: a TinyLFU-admission cache bounded by the bytes of
// its keys and values.
//
// Ristretto stores key hashes, not keys, so the Backend is not a
// cachebackends.Ranger. Its writes are buffered; Set waits for them to be
// applied so that a Get right after a Set sees it, which makes Set slower
// than ristretto's own.
package ristretto

import (
	"fmt"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/sluice-gw/sluice/cachebackends"
)

// Config configures a Backend.
type Config struct {
	// MemCacheSize bounds the bytes of keys and values (mem_cache_size),
	// plus entryOverhead per entry. 0 means 128 MiB.
	MemCacheSize int
}

// Backend is a ristretto-backed cachebackends.Backend, safe for concurrent
// use.
type Backend struct {
	c *ristretto.Cache[[]byte, []byte]
}

// entryOverhead approximates ristretto's own bytes per entry. The cost is
// ours alone: IgnoreInternalCost stops ristretto adding its internal size,
// which would otherwise dwarf small entries (perf.md §2d: a MaxCost sized
// without it admitted 0.3% of items).
const entryOverhead = 64

// avgEntry estimates the bytes of one entity entry, to size the admission
// counters at 10x the expected number of entries as ristretto advises.
const avgEntry = 512

// New returns a Backend sized by cfg.
func New(cfg Config) (*Backend, error) {
	size := cfg.MemCacheSize
	if size == 0 {
		size = cachebackends.DefaultMemCacheSize
	}
	if size <= 0 {
		return nil, fmt.Errorf("ristretto: mem_cache_size=%d must be positive", size)
	}
	c, err := ristretto.NewCache(&ristretto.Config[[]byte, []byte]{
		NumCounters:        max(int64(size/avgEntry)*10, 1000),
		MaxCost:            int64(size),
		BufferItems:        64,
		Metrics:            true,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("ristretto: cannot create cache (mem_cache_size=%d): %w", size, err)
	}
	return &Backend{c: c}, nil
}

// Get implements cachebackends.Backend. The value is a fresh copy.
func (b *Backend) Get(key []byte) ([]byte, bool) {
	v, ok := b.c.Get(key)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// Set implements cachebackends.Backend. A Set that ristretto drops (its
// write buffer is full) returns an error.
func (b *Backend) Set(key, value []byte, ttl time.Duration) error {
	cost := int64(len(key) + len(value) + entryOverhead)
	if cost > b.c.MaxCost() {
		return fmt.Errorf("ristretto: entry of %d bytes exceeds mem_cache_size=%d", cost, b.c.MaxCost())
	}
	if ttl < 0 {
		ttl = 0
	}
	if !b.c.SetWithTTL(key, append([]byte(nil), value...), cost, ttl) {
		return fmt.Errorf("ristretto: set of %q dropped under contention", key)
	}
	b.c.Wait()
	return nil
}

// Delete implements cachebackends.Backend.
func (b *Backend) Delete(key []byte) { b.c.Del(key) }

// Clear implements cachebackends.Backend.
func (b *Backend) Clear() { b.c.Clear() }

// Stats implements cachebackends.Statser. Entries is -1: ristretto does
// not count its entries. Bytes is the cost in use.
func (b *Backend) Stats() cachebackends.Stats {
	return cachebackends.Stats{Entries: -1, Bytes: b.c.MaxCost() - b.c.RemainingCost(),
		Evictions: int64(b.c.Metrics.KeysEvicted())}
}

// Close implements cachebackends.Closer: it stops ristretto's goroutines.
func (b *Backend) Close() error {
	b.c.Close()
	return nil
}

var (
	_ cachebackends.Backend = (*Backend)(nil)
	_ cachebackends.Statser = (*Backend)(nil)
	_ cachebackends.Closer  = (*Backend)(nil)
)
