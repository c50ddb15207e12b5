package cache

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// table is a count-bounded map of entries split into shards, each behind
// its own RWMutex. Readers take only the read lock and mark the entry
// visited; when a shard is full, insertion evicts the first unvisited entry
// it meets (SIEVE-like second chance), clearing visited marks on the way.
type table struct {
	mask   uint64
	shards []shard
}

// entry is one cached value. e is nil for a cached miss. expires is a Unix
// time in nanoseconds; 0 means never.
type entry struct {
	e       entity.Entity
	expires int64
	visited atomic.Bool
}

type shard struct {
	max int
	// mu guards m.
	mu sync.RWMutex
	m  map[entity.CacheKey]*entry
	_  [40]byte // keeps neighbouring shards' locks off one cache line
}

// evictScan bounds how many entries one insertion inspects for a victim.
const evictScan = 16

func newTable(capacity int) *table {
	n := 1
	for n < 64 && capacity/(n*2) >= 64 {
		n *= 2
	}
	t := &table{mask: uint64(n - 1), shards: make([]shard, n)}
	per := (capacity + n - 1) / n
	for i := range t.shards {
		t.shards[i] = shard{max: per, m: make(map[entity.CacheKey]*entry)}
	}
	return t
}

// hash picks a key's shard (and its counters' stripe). The id alone
// spreads keys well enough; hashing the kind too would cost a second hash
// on the hit path. The caller computes it once per Get for every table.
func hash(seed maphash.Seed, k entity.CacheKey) uint64 { return maphash.String(seed, k.ID) }

// get returns the entry for k, whose hash is h, expired or not.
func (t *table) get(k entity.CacheKey, h uint64) *entry {
	s := &t.shards[h&t.mask]
	s.mu.RLock()
	en := s.m[k]
	s.mu.RUnlock()
	if en != nil && !en.visited.Load() {
		en.visited.Store(true)
	}
	return en
}

func (t *table) set(k entity.CacheKey, h uint64, en *entry) {
	s := &t.shards[h&t.mask]
	s.mu.Lock()
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max {
		s.evictLocked()
	}
	s.m[k] = en
	s.mu.Unlock()
}

func (t *table) delete(k entity.CacheKey, h uint64) {
	s := &t.shards[h&t.mask]
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

func (t *table) clear() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}

func (t *table) len() int64 {
	var n int64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += int64(len(s.m))
		s.mu.RUnlock()
	}
	return n
}

// keys appends to dst the String form of the keys starting with prefix,
// stopping once dst holds limit keys (limit <= 0: no limit).
func (t *table) keys(dst []string, prefix string, limit int) []string {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for k := range s.m {
			if limit > 0 && len(dst) >= limit {
				break
			}
			if ks := k.String(); strings.HasPrefix(ks, prefix) {
				dst = append(dst, ks)
			}
		}
		s.mu.RUnlock()
	}
	return dst
}

// evictLocked removes one entry: the first unvisited one among the first
// evictScan met, else the last one met. s.mu must be held.
func (s *shard) evictLocked() {
	var victim entity.CacheKey
	n := 0
	for k, en := range s.m {
		victim = k
		if !en.visited.Load() {
			break
		}
		en.visited.Store(false)
		if n++; n >= evictScan {
			break
		}
	}
	delete(s.m, victim)
}
