package cache

import (
	"fmt"
	"hash/maphash"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// TestTableConcurrentReaders runs lock-free readers against a writer that
// inserts, replaces, deletes, grows and clears, and checks that a reader
// only ever gets the entry of the key it asked for, and that a key being
// replaced is never seen absent. The table is large enough not to evict
// (TestBounds covers eviction).
func TestTableConcurrentReaders(t *testing.T) {
	tb := newTable(1 << 14)
	seed := maphash.MakeSeed()
	keys := make([]entity.CacheKey, 1024)
	for i := range keys {
		keys[i] = entity.CacheKey{Kind: entity.KindService, ID: fmt.Sprint("k", i)}
	}
	pinned := entity.CacheKey{Kind: entity.KindRoute, ID: "pinned"}
	ph := hash(seed, pinned)
	tb.set(ph, &entry{key: pinned})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[i%len(keys)]
				if en := tb.get(k, hash(seed, k)); en != nil && en.key != k {
					t.Errorf("get(%s) = entry of %s", k, en.key)
					return
				}
				if tb.get(pinned, ph) == nil {
					t.Errorf("pinned key seen absent while replaced")
					return
				}
			}
		}()
	}
	for i := range 20000 {
		k := keys[i%len(keys)]
		h := hash(seed, k)
		switch i % 7 {
		case 0:
			tb.delete(k, h)
		case 1:
			tb.set(ph, &entry{key: pinned}) // replaced in place, never absent
		default:
			tb.set(h, &entry{key: k})
		}
	}
	close(stop)
	wg.Wait()
	tb.clear()
	if n := tb.len(); n != 0 {
		t.Fatalf("len after clear = %d", n)
	}
}
