package cachebench

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

const (
	numKeys = 10_000  // cached entities
	ringLen = 1 << 16 // pre-generated key indexes
	bigMem  = 64 << 20
	// smallMem holds about a third of the working set (10k entries of
	// about 330 bytes), so the eviction policy decides the hit ratio.
	smallMem = 1 << 20
)

// data is the shared workload input, built once.
type data struct {
	keys  []entity.CacheKey
	bkeys [][]byte
	value []byte // a service's JSON with gateway/cache's 8-byte header
	zipf  []int
	unif  []int
	src   map[entity.CacheKey]entity.Entity
}

var loadData = sync.OnceValue(func() *data {
	d := &data{src: map[entity.CacheKey]entity.Entity{}}
	name := "svc"
	for i := range numKeys {
		s := &entity.Service{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), Name: &name,
			Protocol: "http", Host: "upstream.internal", Port: 8080, Retries: 5,
			ConnectTimeout: 60000, ReadTimeout: 60000, WriteTimeout: 60000, Tags: []string{"a", "b"}, Enabled: true}
		k := entity.LookupKey(s)
		d.keys = append(d.keys, k)
		d.bkeys = append(d.bkeys, []byte(k.String()))
		d.src[k] = s
	}
	d.value = make([]byte, 330)
	r := rand.New(rand.NewSource(1))
	z := rand.NewZipf(r, 1.01, 1, numKeys-1)
	d.zipf, d.unif = make([]int, ringLen), make([]int, ringLen)
	for i := range d.zipf {
		d.zipf[i], d.unif[i] = int(z.Uint64()), r.Intn(numKeys)
	}
	return d
})

// workload is one access pattern.
type workload struct {
	name   string
	mem    int
	ring   func(d *data) []int
	writes int // one op in writes is a write (0: none)
	churn  bool
}

var workloads = []workload{
	{name: "zipf", mem: bigMem, ring: func(d *data) []int { return d.zipf }},
	{name: "uniform", mem: bigMem, ring: func(d *data) []int { return d.unif }},
	{name: "zipf-small", mem: smallMem, ring: func(d *data) []int { return d.zipf }},
	{name: "zipf-write10", mem: bigMem, ring: func(d *data) []int { return d.zipf }, writes: 10},
	{name: "churn", mem: bigMem, ring: func(d *data) []int { return d.unif }, churn: true},
}

// run drives op in parallel over ring, reporting the hit ratio and ops/s.
func run(b *testing.B, ring []int, op func(i, n int) bool) {
	var seed atomic.Int64
	var hits, total atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		j := int(seed.Add(7919))
		n := int(seed.Add(1)) << 32 // per-goroutine counter space for churn keys
		var h, t int64
		for pb.Next() {
			if op(ring[j&(ringLen-1)], n) {
				h++
			}
			t++
			j++
			n++
		}
		hits.Add(h)
		total.Add(t)
	})
	b.StopTimer()
	if t := total.Load(); t > 0 {
		b.ReportMetric(float64(hits.Load())/float64(t), "hit-ratio")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkRaw drives each backend directly with []byte keys and values.
func BenchmarkRaw(b *testing.B) {
	d := loadData()
	for _, wl := range workloads {
		for _, a := range adapters() {
			b.Run(wl.name+"/"+a.name, func(b *testing.B) {
				be := a.new(b, wl.mem)
				for _, k := range d.bkeys {
					_ = be.Set(k, d.value, 0)
				}
				run(b, wl.ring(d), func(i, n int) bool {
					switch {
					case wl.churn:
						k := fmt.Appendf(nil, "keyauth_credentials:unknown-%d", n)
						_, ok := be.Get(k)
						_ = be.Set(k, d.value, 0)
						return ok
					case wl.writes > 0 && n%wl.writes == 0:
						_ = be.Set(d.bkeys[i], d.value, 0)
						return true
					}
					_, ok := be.Get(d.bkeys[i])
					if !ok {
						_ = be.Set(d.bkeys[i], d.value, 0) // refill, as the cache would
					}
					return ok
				})
			})
		}
	}
}

// BenchmarkCache drives gateway/cache over each backend: hits come from
// L1, writes are invalidations followed by reloads, churn asks for keys
// that do not exist (each one loaded once, then a cached miss).
func BenchmarkCache(b *testing.B) {
	d := loadData()
	load := func(_ context.Context, k entity.CacheKey) (entity.Entity, error) {
		if e, ok := d.src[k]; ok {
			return e, nil
		}
		return nil, store.ErrNotFound
	}
	ctx := context.Background()
	for _, wl := range workloads {
		for _, a := range adapters() {
			b.Run(wl.name+"/"+a.name, func(b *testing.B) {
				l1 := 0
				if wl.mem == smallMem {
					l1 = numKeys / 3 // L1 bounded like the backend
				}
				c := cache.New(a.new(b, wl.mem), load, cache.Options{L1Entries: l1, Backend: a.name})
				for _, k := range d.keys {
					_, _, _ = c.Get(ctx, k)
				}
				run(b, wl.ring(d), func(i, n int) bool {
					k := d.keys[i]
					switch {
					case wl.churn:
						k = entity.CacheKey{Kind: entity.KindKeyAuth, ID: "unknown-" + fmt.Sprint(n)}
					case wl.writes > 0 && n%wl.writes == 0:
						c.Invalidate(k)
					}
					_, res, _ := c.Get(ctx, k)
					return res == cache.Hit || res == cache.NegativeHit
				})
			})
		}
	}
}
