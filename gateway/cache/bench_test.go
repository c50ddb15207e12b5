package cache

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/rand"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/gateway/entity"
)

const (
	benchKeys = 10000
	ringLen   = 1 << 16
)

// zipfRing returns key indexes drawn with Zipf(s=1.01) popularity, the
// workload of /work/shared/reference/perf.md §2d.
func zipfRing() []int {
	z := rand.NewZipf(rand.New(rand.NewSource(1)), 1.01, 1, benchKeys-1)
	ring := make([]int, ringLen)
	for i := range ring {
		ring[i] = int(z.Uint64())
	}
	return ring
}

func benchCache(b *testing.B) (*Cache, []entity.CacheKey) {
	be, err := freecache.New(freecache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	src := newSource()
	keys := make([]entity.CacheKey, benchKeys)
	for i := range keys {
		keys[i] = src.put(svc(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), "h"))
	}
	c := New(be, src.load, Options{})
	return c, keys
}

// BenchmarkGetHit measures a Get answered from L1: 10k cached services
// read with Zipf popularity.
func BenchmarkGetHit(b *testing.B) { benchGetHit(b, zipfRing()) }

// BenchmarkGetHitUniform is BenchmarkGetHit with every key equally
// popular, so most lookups miss the CPU caches.
func BenchmarkGetHitUniform(b *testing.B) {
	ring := make([]int, ringLen)
	for i := range ring {
		ring[i] = i % benchKeys
	}
	benchGetHit(b, ring)
}

func benchGetHit(b *testing.B, ring []int) {
	c, keys := benchCache(b)
	ctx := context.Background()
	for _, k := range keys {
		if _, _, err := c.Get(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	defer procstat.ReportCPU(b, procstat.Self())
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, res, _ := c.Get(ctx, keys[ring[i&(ringLen-1)]]); res != Hit {
				b.Errorf("result = %d, want Hit", res)
				return
			}
			i++
		}
	})
}

// BenchmarkGetNegative measures a Get answered by a cached miss.
func BenchmarkGetNegative(b *testing.B) {
	c, _ := benchCache(b)
	ctx := context.Background()
	missing := make([]entity.CacheKey, benchKeys)
	for i := range missing {
		missing[i] = entity.CacheKey{Kind: entity.KindKeyAuth, ID: fmt.Sprint("unknown-", i)}
		if _, _, err := c.Get(ctx, missing[i]); err != nil {
			b.Fatal(err)
		}
	}
	ring := zipfRing()
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	defer procstat.ReportCPU(b, procstat.Self())
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, res, _ := c.Get(ctx, missing[ring[i&(ringLen-1)]]); res != NegativeHit {
				b.Errorf("result = %d, want NegativeHit", res)
				return
			}
			i++
		}
	})
}

// BenchmarkGetMiss measures a Get that loads: each iteration invalidates
// the key first, so it pays the flight, the load, the backend write and
// the L1 insertion.
func BenchmarkGetMiss(b *testing.B) {
	c, keys := benchCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer procstat.ReportCPU(b, procstat.Self())
	for i := range b.N {
		k := keys[i%benchKeys]
		c.Invalidate(k)
		if _, res, _ := c.Get(ctx, k); res != Miss {
			b.Fatalf("result = %d, want Miss", res)
		}
	}
}

// BenchmarkSetChurn measures an L1 insertion into a full table: four
// times more keys than capacity cycle through it, so each set evicts.
func BenchmarkSetChurn(b *testing.B) {
	t := newTable(benchKeys)
	seed := maphash.MakeSeed()
	keys := make([]entity.CacheKey, 4*benchKeys)
	hs := make([]uint64, len(keys))
	for i := range keys {
		keys[i] = entity.CacheKey{Kind: entity.KindService, ID: fmt.Sprint("churn-", i)}
		hs[i] = hash(seed, keys[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer procstat.ReportCPU(b, procstat.Self())
	for i := range b.N {
		j := i % len(keys)
		t.set(hs[j], &entry{key: keys[j]})
	}
}

// reportCPU reports the process's CPU time per op since start. With
// RunParallel it sums all Ps: perfect scaling on 2 Ps shows twice the
// wall ns/op.
