package cache

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// table is a count-bounded map of entries split into shards, each behind
// its own RWMutex; a nil *table is disabled and holds nothing. Readers
// take only the read lock and mark the entry visited; when a shard is full, insertion evicts the first unvisited entry
// it meets (SIEVE-like second chance), clearing visited marks on the way.
//
// A shard's map is keyed by the key's 64-bit hash, which the caller has
// already computed, so a lookup hashes a uint64 rather than the key's two
// strings again; keys with the same hash chain through entry.next.
type table struct {
	mask   uint64
	shards []shard
}

// entry is one cached value. e is nil for a cached miss. expires is a Unix
// time in nanoseconds; 0 means never. Only visited changes after the entry
// is published; next changes only under the shard's write lock.
type entry struct {
	key     entity.CacheKey
	e       entity.Entity
	expires int64
	next    *entry
	visited atomic.Bool
}

type shard struct {
	max int
	// mu guards n, m and the chains.
	mu sync.RWMutex
	n  int
	m  map[uint64]*entry
	_  [32]byte // keeps neighbouring shards' locks off one cache line
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
		t.shards[i] = shard{max: per, m: make(map[uint64]*entry)}
	}
	return t
}

// hash picks a key's shard (and its counters' stripe) and keys the shard's
// map. The id alone spreads keys well enough; hashing the kind too would
// cost a second hash on the hit path. The caller computes it once per Get
// for every table.
func hash(seed maphash.Seed, k entity.CacheKey) uint64 { return maphash.String(seed, k.ID) }

// get returns the entry for k, whose hash is h, expired or not.
func (t *table) get(k entity.CacheKey, h uint64) *entry {
	if t == nil {
		return nil
	}
	s := &t.shards[h&t.mask]
	s.mu.RLock()
	en := s.m[h]
	for en != nil && en.key != k {
		en = en.next
	}
	s.mu.RUnlock()
	if en != nil && !en.visited.Load() {
		en.visited.Store(true)
	}
	return en
}

// set stores en under its key, whose hash is h.
func (t *table) set(h uint64, en *entry) {
	if t == nil {
		return
	}
	s := &t.shards[h&t.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.unlinkLocked(en.key, h) && s.n >= s.max {
		s.evictLocked()
	}
	en.next = s.m[h]
	s.m[h] = en
	s.n++
}

func (t *table) delete(k entity.CacheKey, h uint64) {
	if t == nil {
		return
	}
	s := &t.shards[h&t.mask]
	s.mu.Lock()
	s.unlinkLocked(k, h)
	s.mu.Unlock()
}

func (t *table) clear() {
	if t == nil {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.n = 0
		s.mu.Unlock()
	}
}

func (t *table) len() int64 {
	if t == nil {
		return 0
	}
	var n int64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += int64(s.n)
		s.mu.RUnlock()
	}
	return n
}

// keys appends to dst the String form of the keys starting with prefix.
func (t *table) keys(dst []string, prefix string) []string {
	if t == nil {
		return dst
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, en := range s.m {
			for ; en != nil; en = en.next {
				if ks := en.key.String(); strings.HasPrefix(ks, prefix) {
					dst = append(dst, ks)
				}
			}
		}
		s.mu.RUnlock()
	}
	return dst
}

// unlinkLocked removes k's entry from the chain at h and reports whether
// there was one. s.mu must be held for writing.
func (s *shard) unlinkLocked(k entity.CacheKey, h uint64) bool {
	var prev *entry
	for en := s.m[h]; en != nil; prev, en = en, en.next {
		if en.key != k {
			continue
		}
		switch {
		case prev != nil:
			prev.next = en.next
		case en.next != nil:
			s.m[h] = en.next
		default:
			delete(s.m, h)
		}
		s.n--
		return true
	}
	return false
}

// evictLocked removes one entry: the first unvisited one among the first
// evictScan chains met, else the last one met. s.mu must be held for
// writing.
func (s *shard) evictLocked() {
	var victim *entry
	var vh uint64
	n := 0
	for h, en := range s.m {
		victim, vh = en, h
		if !en.visited.Load() {
			break
		}
		en.visited.Store(false)
		if n++; n >= evictScan {
			break
		}
	}
	if victim != nil {
		s.unlinkLocked(victim.key, vh)
	}
}
