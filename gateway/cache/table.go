package cache

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// table is a count-bounded hash table of entries split into shards; a nil
// *table is disabled and holds nothing. Reads take no lock: a reader loads
// the shard's bucket array and walks a chain with atomic loads only, so the
// hit path writes nothing that another core reads (a sync.RWMutex read
// lock would bounce its reader count between cores on every hit). Writers
// serialize on the shard's mutex. When a shard is full, insertion evicts
// the first unvisited entry a clock hand meets (SIEVE-like second chance),
// clearing visited marks on the way.
//
// Invariants that make lock-free reads safe:
//   - A published entry's key, h, e, kind and expires never change; a new
//     value for a key is a new entry that replaces the old one in place
//     (prev.next or the bucket head swings from old to new), so a reader
//     sees the old entry or the new one, never neither.
//   - An unlinked entry keeps its next pointer, so a reader standing on it
//     still reaches the rest of the chain.
//   - A bucket array is only written while it is the shard's current one.
//     Growing or clearing stores a new array; the old one is frozen, and a
//     reader still walking it returns the state at the moment of the swap,
//     which lies within its own call, so every Get stays linearizable (a
//     Get that starts after Invalidate returns cannot see the old value).
type table struct {
	mask   uint64
	shards []shard
}

// entry is one cached value. e is nil for a cached miss. expires is a Unix
// time in nanoseconds; 0 means never. kind is kindIndex(key.Kind), kept so
// that a hit picks its counter without comparing kind strings. Only next
// and visited change after the entry is published; next only under the
// shard's lock. The fields a hit reads come first; next, read only on a
// collision, comes last.
type entry struct {
	h       uint64
	key     entity.CacheKey
	e       entity.Entity
	expires int64
	visited atomic.Bool
	kind    uint8
	next    atomic.Pointer[entry]
}

type shard struct {
	buckets atomic.Pointer[buckets]
	// mu serializes writers; it guards n, hand and every store to the
	// current bucket array and its chains.
	mu   sync.Mutex
	max  int
	n    int
	hand int
	_    [24]byte // keeps neighbouring shards' hot words off one cache line
}

// buckets is one shard's array of chain heads; its length is a power of
// two. A key's bucket takes bits 32 and up of its hash, its shard the low
// bits, so the two choices are independent.
type buckets struct {
	mask  uint64
	heads []atomic.Pointer[entry]
}

const (
	// evictScan bounds how many entries one insertion inspects for a
	// victim.
	evictScan = 16
	// minBuckets is a new or cleared shard's array length; the array
	// doubles whenever the shard holds more entries than buckets.
	minBuckets = 8
)

func newTable(capacity int) *table {
	n := 1
	for n < 64 && capacity/(n*2) >= 64 {
		n *= 2
	}
	t := &table{mask: uint64(n - 1), shards: make([]shard, n)}
	per := (capacity + n - 1) / n
	for i := range t.shards {
		s := &t.shards[i]
		s.max = per
		s.buckets.Store(newBuckets(minBuckets))
	}
	return t
}

func newBuckets(n int) *buckets {
	return &buckets{mask: uint64(n - 1), heads: make([]atomic.Pointer[entry], n)}
}

// hash picks a key's shard and bucket. The id alone spreads keys well
// enough; hashing the kind too would cost a second hash on the hit path.
// The caller computes it once per Get for every table.
func hash(seed maphash.Seed, k entity.CacheKey) uint64 { return maphash.String(seed, k.ID) }

// get returns the entry for k, whose hash is h, expired or not.
func (t *table) get(k entity.CacheKey, h uint64) *entry {
	if t == nil {
		return nil
	}
	b := t.shards[h&t.mask].buckets.Load()
	en := b.heads[(h>>32)&b.mask].Load()
	for en != nil && (en.h != h || en.key != k) {
		en = en.next.Load()
	}
	// Load first: a store on every hit would pull the entry's cache line
	// into exclusive state on each core that reads it.
	if en != nil && !en.visited.Load() {
		en.visited.Store(true)
	}
	return en
}

// set stores en under its key, whose hash is h, replacing the key's
// entry if there is one.
func (t *table) set(h uint64, en *entry) {
	if t == nil {
		return
	}
	en.h = h
	en.kind = uint8(kindIndex(en.key.Kind))
	s := &t.shards[h&t.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets.Load()
	head := &b.heads[(h>>32)&b.mask]
	if link := s.findLocked(head, en.key, h); link != nil {
		old := link.Load()
		en.next.Store(old.next.Load())
		link.Store(en)
		return
	}
	if s.n >= s.max {
		s.evictLocked()
	}
	if s.n >= len(b.heads) {
		b = s.growLocked(b)
		head = &b.heads[(h>>32)&b.mask]
	}
	en.next.Store(head.Load())
	head.Store(en)
	s.n++
}

func (t *table) delete(k entity.CacheKey, h uint64) {
	if t == nil {
		return
	}
	s := &t.shards[h&t.mask]
	s.mu.Lock()
	b := s.buckets.Load()
	if link := s.findLocked(&b.heads[(h>>32)&b.mask], k, h); link != nil {
		s.unlinkLocked(link)
	}
	s.mu.Unlock()
}

func (t *table) clear() {
	if t == nil {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.buckets.Store(newBuckets(minBuckets))
		s.n, s.hand = 0, 0
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
		s.mu.Lock()
		n += int64(s.n)
		s.mu.Unlock()
	}
	return n
}

// keys appends to dst the String form of the keys starting with prefix.
func (t *table) keys(dst []string, prefix string) []string {
	if t == nil {
		return dst
	}
	for i := range t.shards {
		b := t.shards[i].buckets.Load()
		for j := range b.heads {
			for en := b.heads[j].Load(); en != nil; en = en.next.Load() {
				if ks := en.key.String(); strings.HasPrefix(ks, prefix) {
					dst = append(dst, ks)
				}
			}
		}
	}
	return dst
}

// findLocked returns the link (bucket head or a next field) that points to
// k's entry in the chain starting at head, or nil. s.mu must be held.
func (s *shard) findLocked(head *atomic.Pointer[entry], k entity.CacheKey, h uint64) *atomic.Pointer[entry] {
	for link := head; ; {
		en := link.Load()
		if en == nil {
			return nil
		}
		if en.h == h && en.key == k {
			return link
		}
		link = &en.next
	}
}

// unlinkLocked removes the entry link points to. The entry keeps its own
// next pointer for readers standing on it. s.mu must be held.
func (s *shard) unlinkLocked(link *atomic.Pointer[entry]) {
	link.Store(link.Load().next.Load())
	s.n--
}

// growLocked doubles the shard's bucket array and returns the new one.
// Entries are copied rather than relinked: relinking would rewrite next
// pointers that readers of the old array are following. s.mu must be
// held.
func (s *shard) growLocked(old *buckets) *buckets {
	b := newBuckets(2 * len(old.heads))
	for i := range old.heads {
		for en := old.heads[i].Load(); en != nil; en = en.next.Load() {
			cp := &entry{h: en.h, key: en.key, e: en.e, expires: en.expires, kind: en.kind}
			cp.visited.Store(en.visited.Load())
			head := &b.heads[(en.h>>32)&b.mask]
			cp.next.Store(head.Load())
			head.Store(cp)
		}
	}
	s.buckets.Store(b)
	s.hand = 0
	return b
}

// evictLocked removes one entry: the first unvisited one the clock hand
// meets within evictScan entries, else the last one met. The hand stays
// at the victim's bucket so that the next scan resumes there. s.mu must
// be held.
func (s *shard) evictLocked() {
	b := s.buckets.Load()
	var victim *atomic.Pointer[entry]
	seen := 0
	for range len(b.heads) {
		i := s.hand & int(b.mask)
		for link := &b.heads[i]; ; {
			en := link.Load()
			if en == nil {
				break
			}
			victim = link
			if !en.visited.Load() || seen+1 >= evictScan {
				s.hand = i
				s.unlinkLocked(victim)
				return
			}
			en.visited.Store(false)
			seen++
			link = &en.next
		}
		s.hand = i + 1
	}
	if victim != nil {
		s.unlinkLocked(victim)
	}
}
