// Package freecache adapts github.com/coocood/freecache to
// cachebackends.Backend. It is the default backend: values live in a few
// large byte slices, so a million entries cost the garbage collector
// almost nothing.
package freecache

import (
	"errors"
	"fmt"
	"time"

	"github.com/coocood/freecache"

	"github.com/sluice-gw/sluice/cachebackends"
)

// Config configures a Backend.
type Config struct {
	// MemCacheSize is the cache size in bytes (mem_cache_size), allocated
	// up front. 0 means 128 MiB; the minimum is 512 KiB. One entry may use
	// at most 1/1024 of it.
	MemCacheSize int
}

// Backend is a freecache-backed cachebackends.Backend, safe for concurrent
// use. TTLs are rounded up to whole seconds.
type Backend struct {
	c    *freecache.Cache
	size int
}

// minSize is freecache's own minimum.
const minSize = 512 << 10

// New returns a Backend sized by cfg.
func New(cfg Config) (*Backend, error) {
	size := cfg.MemCacheSize
	if size == 0 {
		size = cachebackends.DefaultMemCacheSize
	}
	if size < minSize {
		return nil, fmt.Errorf("freecache: mem_cache_size=%d is below the minimum of %d bytes", size, minSize)
	}
	return &Backend{c: freecache.NewCache(size), size: size}, nil
}

// Get implements cachebackends.Backend. The value is a fresh copy.
func (b *Backend) Get(key []byte) ([]byte, bool) {
	v, err := b.c.Get(key)
	return v, err == nil
}

// Set implements cachebackends.Backend.
func (b *Backend) Set(key, value []byte, ttl time.Duration) error {
	err := b.c.Set(key, value, seconds(ttl))
	switch {
	case errors.Is(err, freecache.ErrLargeEntry), errors.Is(err, freecache.ErrLargeKey):
		return fmt.Errorf("freecache: entry of %d bytes exceeds mem_cache_size/1024=%d bytes: %w",
			len(key)+len(value), b.size/1024, err)
	case err != nil:
		return fmt.Errorf("freecache: %w", err)
	}
	return nil
}

// Delete implements cachebackends.Backend.
func (b *Backend) Delete(key []byte) { b.c.Del(key) }

// Clear implements cachebackends.Backend.
func (b *Backend) Clear() { b.c.Clear() }

// Stats implements cachebackends.Statser. Bytes is the preallocated size:
// freecache does not count the bytes in use.
func (b *Backend) Stats() cachebackends.Stats {
	return cachebackends.Stats{Entries: b.c.EntryCount(), Bytes: int64(b.size), Evictions: b.c.EvacuateCount()}
}

// Range implements cachebackends.Ranger. It skips expired entries.
func (b *Backend) Range(fn func(key []byte) bool) {
	it := b.c.NewIterator()
	for e := it.Next(); e != nil; e = it.Next() {
		if !fn(e.Key) {
			return
		}
	}
}

// seconds rounds ttl up to whole seconds: freecache reads 0 as "never
// expires", so a sub-second TTL must not truncate to 0.
func seconds(ttl time.Duration) int {
	if ttl <= 0 {
		return 0
	}
	return int((ttl + time.Second - 1) / time.Second)
}

var (
	_ cachebackends.Backend = (*Backend)(nil)
	_ cachebackends.Statser = (*Backend)(nil)
	_ cachebackends.Ranger  = (*Backend)(nil)
)
