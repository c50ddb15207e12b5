package cache

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/gateway/entity"
)

const benchKeys = 10000

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

// BenchmarkGetHit measures a Get answered from L1 (keys spread over
// 10k cached services).
func BenchmarkGetHit(b *testing.B) {
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
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, res, _ := c.Get(ctx, keys[i%benchKeys]); res != Hit {
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
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, res, _ := c.Get(ctx, missing[i%benchKeys]); res != NegativeHit {
				b.Errorf("result = %d, want NegativeHit", res)
				return
			}
			i++
		}
	})
}
