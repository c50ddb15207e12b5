// Package otter adapts github.com/maypok86/otter/v2 to
// cachebackends.Backend: a concurrent W-TinyLFU cache bounded by the bytes
// of its keys and values.
package otter

import (
	"fmt"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"

	"github.com/sluice-gw/sluice/cachebackends"
)

// Config configures a Backend.
type Config struct {
	// MemCacheSize bounds the bytes of keys and values (mem_cache_size),
	// plus entryOverhead per entry. 0 means 128 MiB.
	MemCacheSize int
}

// Backend is an otter-backed cachebackends.Backend, safe for concurrent
// use.
type Backend struct {
	c     *otter.Cache[string, item]
	stats *stats.Counter
}

// item is a stored value with the TTL it was set with.
type item struct {
	v   []byte
	ttl time.Duration
}

// entryOverhead approximates otter's own bytes per entry (node, slice and
// string headers), so that many tiny entries still respect the bound.
const entryOverhead = 96

// never stands for "no expiry": otter wants a duration.
const never = 100 * 365 * 24 * time.Hour

// New returns a Backend sized by cfg.
func New(cfg Config) (*Backend, error) {
	size := cfg.MemCacheSize
	if size == 0 {
		size = cachebackends.DefaultMemCacheSize
	}
	if size < 0 {
		return nil, fmt.Errorf("otter: mem_cache_size=%d must be positive", size)
	}
	counter := stats.NewCounter()
	c, err := otter.New(&otter.Options[string, item]{
		MaximumWeight: uint64(size),
		Weigher:       func(k string, it item) uint32 { return uint32(len(k) + len(it.v) + entryOverhead) },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, item]) time.Duration {
			if e.Value.ttl <= 0 {
				return never
			}
			return e.Value.ttl
		}),
		StatsRecorder: counter,
	})
	if err != nil {
		return nil, fmt.Errorf("otter: cannot create cache (mem_cache_size=%d): %w", size, err)
	}
	return &Backend{c: c, stats: counter}, nil
}

// Get implements cachebackends.Backend. The value is a fresh copy.
func (b *Backend) Get(key []byte) ([]byte, bool) {
	it, ok := b.c.GetIfPresent(string(key))
	if !ok {
		return nil, false
	}
	return append([]byte(nil), it.v...), true
}

// Set implements cachebackends.Backend.
func (b *Backend) Set(key, value []byte, ttl time.Duration) error {
	if w := uint64(len(key) + len(value) + entryOverhead); w > b.c.GetMaximum() {
		return fmt.Errorf("otter: entry of %d bytes exceeds mem_cache_size=%d", w, b.c.GetMaximum())
	}
	b.c.Set(string(key), item{v: append([]byte(nil), value...), ttl: ttl})
	return nil
}

// Delete implements cachebackends.Backend.
func (b *Backend) Delete(key []byte) { b.c.Invalidate(string(key)) }

// Clear implements cachebackends.Backend.
func (b *Backend) Clear() { b.c.InvalidateAll() }

// Stats implements cachebackends.Statser. Bytes is the weighed size (keys,
// values and entryOverhead per entry).
func (b *Backend) Stats() cachebackends.Stats {
	b.c.CleanUp() // applies buffered writes so that the sizes are current
	return cachebackends.Stats{Entries: int64(b.c.EstimatedSize()), Bytes: int64(b.c.WeightedSize()),
		Evictions: int64(b.stats.Snapshot().Evictions)}
}

// Range implements cachebackends.Ranger.
func (b *Backend) Range(fn func(key []byte) bool) {
	for k := range b.c.Keys() {
		if !fn([]byte(k)) {
			return
		}
	}
}

// Close implements cachebackends.Closer: it stops otter's goroutines.
func (b *Backend) Close() error {
	b.c.StopAllGoroutines()
	return nil
}

var (
	_ cachebackends.Backend = (*Backend)(nil)
	_ cachebackends.Statser = (*Backend)(nil)
	_ cachebackends.Ranger  = (*Backend)(nil)
	_ cachebackends.Closer  = (*Backend)(nil)
)
