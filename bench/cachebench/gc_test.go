package cachebench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/none"
	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/entity"
)

const gcEntries = 1_000_000

// sink keeps the filled cache reachable while the GC is measured.
var sink any

// BenchmarkGC fills each backend (and gateway/cache's decoded L1) with 1M
// entries, then reports the live heap, a forced full GC's wall time and
// its stop-the-world pause. Run with -benchtime 1x.
func BenchmarkGC(b *testing.B) {
	value := make([]byte, 100)
	for _, a := range adapters() {
		if a.name == "none" || a.name == "redis" {
			continue // nothing held in this process
		}
		b.Run("raw/"+a.name, func(b *testing.B) {
			measureGC(b, func() any {
				be := a.new(b, 512<<20)
				for i := range gcEntries {
					_ = be.Set(fmt.Appendf(nil, "keyauth_credentials:k%d", i), value, 0)
				}
				return be
			})
		})
	}
	b.Run("cache-L1/none", func(b *testing.B) {
		measureGC(b, func() any {
			be, _ := none.New(none.Config{})
			load := func(_ context.Context, k entity.CacheKey) (entity.Entity, error) {
				return &entity.KeyAuthCredential{ID: k.ID, Key: k.ID, Consumer: &entity.Ref{ID: "c"}}, nil
			}
			c := cache.New(cachebackends.Backend(be), load, cache.Options{L1Entries: gcEntries})
			for i := range gcEntries {
				_, _, _ = c.Get(context.Background(), entity.CacheKey{Kind: entity.KindKeyAuth, ID: fmt.Sprint("k", i)})
			}
			return c
		})
	})
}

func measureGC(b *testing.B, fill func() any) {
	for range b.N {
		sink = fill()
		runtime.GC()
		var ms runtime.MemStats
		start := time.Now()
		runtime.GC()
		wall := time.Since(start)
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(wall.Microseconds())/1000, "gc-ms")
		b.ReportMetric(float64(ms.PauseNs[(ms.NumGC+255)%256])/1000, "stw-us")
		sink = nil
		runtime.GC()
	}
}
