// Package lru is the baseline cachebackends.Backend: a map split into
// shards, each with its own mutex and a least-recently-used list, bounded
// by the bytes of keys and values.
package lru

import (
	"container/list"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
)

// Config configures a Backend.
type Config struct {
	// MemCacheSize bounds the bytes of keys and values (mem_cache_size),
	// plus entryOverhead per entry. 0 means 128 MiB.
	MemCacheSize int
}

// Backend is an LRU cachebackends.Backend, safe for concurrent use.
type Backend struct {
	seed      maphash.Seed
	shards    [numShards]shard
	evictions atomic.Int64
}

type shard struct {
	max int
	// mu guards the fields below.
	mu    sync.Mutex
	bytes int
	m     map[string]*list.Element // of *item
	order list.List                // front = most recently used
}

type item struct {
	key     string
	value   []byte
	expires int64 // Unix nanoseconds; 0 = never
}

const (
	numShards     = 16
	entryOverhead = 96 // map slot, list element and headers, approximately
)

// New returns a Backend sized by cfg.
func New(cfg Config) (*Backend, error) {
	size := cfg.MemCacheSize
	if size == 0 {
		size = cachebackends.DefaultMemCacheSize
	}
	if size < numShards*1024 {
		return nil, fmt.Errorf("lru: mem_cache_size=%d is below the minimum of %d bytes", size, numShards*1024)
	}
	b := &Backend{seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].max = size / numShards
		b.shards[i].m = make(map[string]*list.Element)
	}
	return b, nil
}

// Get implements cachebackends.Backend. The value is a fresh copy.
func (b *Backend) Get(key []byte) ([]byte, bool) {
	s := b.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.m[string(key)]
	if !ok {
		return nil, false
	}
	it := el.Value.(*item)
	if it.expires != 0 && time.Now().UnixNano() >= it.expires {
		s.removeLocked(el)
		return nil, false
	}
	s.order.MoveToFront(el)
	return append([]byte(nil), it.value...), true
}

// Set implements cachebackends.Backend.
func (b *Backend) Set(key, value []byte, ttl time.Duration) error {
	s := b.shard(key)
	size := len(key) + len(value) + entryOverhead
	if size > s.max {
		return fmt.Errorf("lru: entry of %d bytes exceeds mem_cache_size/%d=%d", size, numShards, s.max)
	}
	it := &item{key: string(key), value: append([]byte(nil), value...)}
	if ttl > 0 {
		it.expires = time.Now().Add(ttl).UnixNano()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[it.key]; ok {
		s.removeLocked(el)
	}
	s.m[it.key] = s.order.PushFront(it)
	s.bytes += size
	for s.bytes > s.max {
		s.removeLocked(s.order.Back())
		b.evictions.Add(1)
	}
	return nil
}

// Delete implements cachebackends.Backend.
func (b *Backend) Delete(key []byte) {
	s := b.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[string(key)]; ok {
		s.removeLocked(el)
	}
}

// Clear implements cachebackends.Backend.
func (b *Backend) Clear() {
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.order.Init()
		s.bytes = 0
		s.mu.Unlock()
	}
}

// Stats implements cachebackends.Statser.
func (b *Backend) Stats() cachebackends.Stats {
	st := cachebackends.Stats{Evictions: b.evictions.Load()}
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		st.Entries += int64(len(s.m))
		st.Bytes += int64(s.bytes)
		s.mu.Unlock()
	}
	return st
}

// Range implements cachebackends.Ranger. It visits a snapshot of each
// shard's keys, so fn may call the Backend.
func (b *Backend) Range(fn func(key []byte) bool) {
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		keys := make([]string, 0, len(s.m))
		for k := range s.m {
			keys = append(keys, k)
		}
		s.mu.Unlock()
		for _, k := range keys {
			if !fn([]byte(k)) {
				return
			}
		}
	}
}

func (b *Backend) shard(key []byte) *shard {
	return &b.shards[maphash.Bytes(b.seed, key)%numShards]
}

// removeLocked removes el. s.mu must be held.
func (s *shard) removeLocked(el *list.Element) {
	it := s.order.Remove(el).(*item)
	delete(s.m, it.key)
	s.bytes -= len(it.key) + len(it.value) + entryOverhead
}

var (
	_ cachebackends.Backend = (*Backend)(nil)
	_ cachebackends.Statser = (*Backend)(nil)
	_ cachebackends.Ranger  = (*Backend)(nil)
)
