package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/cachebackends/lru"
	"github.com/sluice-gw/sluice/cachebackends/none"
	"github.com/sluice-gw/sluice/cachebackends/otter"
	"github.com/sluice-gw/sluice/cachebackends/ristretto"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// backends lists every in-memory backend the cache is tested over.
var backends = []struct {
	name string
	new  func(t *testing.T) cachebackends.Backend
}{
	{"freecache", func(t *testing.T) cachebackends.Backend {
		return must(t)(freecache.New(freecache.Config{MemCacheSize: 4 << 20}))
	}},
	{"otter", func(t *testing.T) cachebackends.Backend {
		return must(t)(otter.New(otter.Config{MemCacheSize: 4 << 20}))
	}},
	{"ristretto", func(t *testing.T) cachebackends.Backend {
		return must(t)(ristretto.New(ristretto.Config{MemCacheSize: 4 << 20}))
	}},
	{"lru", func(t *testing.T) cachebackends.Backend { return must(t)(lru.New(lru.Config{MemCacheSize: 4 << 20})) }},
	{"none", func(t *testing.T) cachebackends.Backend { return must(t)(none.New(none.Config{})) }},
}

// must returns a function that fails t on a constructor error and closes
// the backend when t ends.
func must(t *testing.T) func(cachebackends.Backend, error) cachebackends.Backend {
	return func(b cachebackends.Backend, err error) cachebackends.Backend {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := b.(cachebackends.Closer); ok {
			t.Cleanup(func() { _ = c.Close() })
		}
		return b
	}
}

// source is the loader contract as a map: the datastore's content.
type source struct {
	mu    sync.Mutex
	m     map[entity.CacheKey]entity.Entity
	err   error
	calls atomic.Int64
	gate  chan struct{} // when non-nil, each load waits for it
}

func newSource() *source { return &source{m: map[entity.CacheKey]entity.Entity{}} }

func (s *source) put(e entity.Entity) entity.CacheKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := entity.LookupKey(e)
	s.m[k] = e
	return k
}

func (s *source) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *source) load(ctx context.Context, k entity.CacheKey) (entity.Entity, error) {
	s.calls.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	e, ok := s.m[k]
	if !ok {
		return nil, fmt.Errorf("sqlite: %s: %w", k, store.ErrNotFound)
	}
	return e, nil
}

// clock is a settable now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time           { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration)  { c.ns.Add(int64(d)) }
func newClock() *clock                    { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func svc(id, host string) *entity.Service { return &entity.Service{ID: id, Host: host, Port: 80} }
func host(t *testing.T, e entity.Entity) string {
	t.Helper()
	s, ok := e.(*entity.Service)
	if !ok {
		t.Fatalf("got %T, want *entity.Service", e)
	}
	return s.Host
}

func newCache(t *testing.T, b cachebackends.Backend, src *source, opts Options) (*Cache, *clock) {
	c := New(b, src.load, opts)
	clk := newClock()
	c.now = clk.now
	return c, clk
}

func forEachBackend(t *testing.T, f func(t *testing.T, b cachebackends.Backend)) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) { f(t, bk.new(t)) })
	}
}

func wantGet(t *testing.T, c *Cache, k entity.CacheKey, wantHost string, wantRes Result) {
	t.Helper()
	e, res, err := c.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get(%s): %v", k, err)
	}
	if res != wantRes {
		t.Fatalf("Get(%s) result = %d, want %d", k, res, wantRes)
	}
	if wantHost == "" {
		if e != nil {
			t.Fatalf("Get(%s) = %v, want nil", k, e)
		}
		return
	}
	if e == nil {
		t.Fatalf("Get(%s) = nil, want host %q", k, wantHost)
	}
	if h := host(t, e); h != wantHost {
		t.Fatalf("Get(%s) host = %q, want %q", k, h, wantHost)
	}
}

func TestGet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		for _, l1 := range []int{0, -1} {
			t.Run(fmt.Sprintf("l1=%d", l1), func(t *testing.T) {
				if _, ok := b.(*none.Backend); ok && l1 < 0 {
					t.Skip("with no L1 and a backend that retains nothing, nothing is cached")
				}
				b.Clear()
				src := newSource()
				k := src.put(svc("s1", "a.test"))
				c, _ := newCache(t, b, src, Options{L1Entries: l1})
				wantGet(t, c, k, "a.test", Miss)
				wantGet(t, c, k, "a.test", Hit)
				wantGet(t, c, k, "a.test", Hit)
				if n := src.calls.Load(); n != 1 {
					t.Fatalf("loads = %d, want 1", n)
				}
				missing := entity.CacheKey{Kind: entity.KindService, ID: "nope"}
				wantGet(t, c, missing, "", Miss)
				wantGet(t, c, missing, "", NegativeHit)
				if n := src.calls.Load(); n != 2 {
					t.Fatalf("loads = %d, want 2", n)
				}
			})
		}
	})
}

// TestNothingCachedWhenDisabled is the "none" configuration: no L1, no
// negative entries, a backend that keeps nothing — every Get loads.
func TestNothingCachedWhenDisabled(t *testing.T) {
	src := newSource()
	k := src.put(svc("s1", "a.test"))
	b := must(t)(none.New(none.Config{}))
	c, _ := newCache(t, b, src, Options{L1Entries: -1, NegativeEntries: -1})
	missing := entity.CacheKey{Kind: entity.KindService, ID: "nope"}
	for range 3 {
		wantGet(t, c, k, "a.test", Miss)
		wantGet(t, c, missing, "", Miss)
	}
	if n := src.calls.Load(); n != 6 {
		t.Fatalf("loads = %d, want 6: every Get must reach the loader", n)
	}
	if _, _, ok := c.Peek(missing); ok {
		t.Error("Peek found a cached miss with negative caching disabled")
	}
}

func TestConcurrentMissingKeyLoadsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		c, _ := newCache(t, b, src, Options{})
		k := entity.CacheKey{Kind: entity.KindKeyAuth, ID: "unknown-key"}
		var wg sync.WaitGroup
		var bad atomic.Int64
		for range 1000 {
			wg.Go(func() {
				e, _, err := c.Get(context.Background(), k)
				if e != nil || err != nil {
					bad.Add(1)
				}
			})
		}
		wg.Wait()
		if n := src.calls.Load(); n != 1 {
			t.Fatalf("loads = %d, want exactly 1", n)
		}
		if bad.Load() != 0 {
			t.Fatalf("%d Gets returned an entity or an error, want nil, nil", bad.Load())
		}
	})
}

func TestTTLExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		k := src.put(svc("s1", "a.test"))
		missing := entity.CacheKey{Kind: entity.KindService, ID: "missing"}
		c, clk := newCache(t, b, src, Options{TTL: time.Minute, NegTTL: 10 * time.Second})
		wantGet(t, c, k, "a.test", Miss)
		wantGet(t, c, missing, "", Miss)
		src.put(svc("s1", "b.test"))
		clk.advance(11 * time.Second)
		wantGet(t, c, k, "a.test", Hit)
		wantGet(t, c, missing, "", Miss) // neg_ttl passed
		clk.advance(time.Minute)
		wantGet(t, c, k, "b.test", Miss) // ttl passed: reloaded
		wantGet(t, c, k, "b.test", Hit)
	})
}

func TestStaleResurrection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		dbDown := errors.New("postgres: connection refused")
		tests := []struct {
			name      string
			resurrect time.Duration
			want      Result
			wantErr   bool
		}{
			{"enabled", 30 * time.Second, StaleHit, false},
			{"disabled", 0, Miss, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b.Clear()
				src := newSource()
				k := src.put(svc("s1", "a.test"))
				c, clk := newCache(t, b, src, Options{TTL: time.Minute, ResurrectTTL: tt.resurrect})
				wantGet(t, c, k, "a.test", Miss)
				clk.advance(2 * time.Minute)
				src.setErr(dbDown)
				e, res, err := c.Get(context.Background(), k)
				if tt.wantErr {
					if !errors.Is(err, dbDown) || e != nil {
						t.Fatalf("Get = %v, %v; want nil and the datastore error", e, err)
					}
					return
				}
				if err != nil || res != tt.want || host(t, e) != "a.test" {
					t.Fatalf("Get = %v, %d, %v; want stale a.test", e, res, err)
				}
				// Resurrected for ResurrectTTL: served without loading.
				calls := src.calls.Load()
				clk.advance(tt.resurrect / 2)
				wantGet(t, c, k, "a.test", Hit)
				if src.calls.Load() != calls {
					t.Fatal("loaded during the resurrect window")
				}
				clk.advance(tt.resurrect)
				src.setErr(nil)
				wantGet(t, c, k, "a.test", Miss)
			})
		}
	})
}

func TestStaleNotServedOnNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		k := src.put(svc("s1", "a.test"))
		c, clk := newCache(t, b, src, Options{TTL: time.Minute, ResurrectTTL: time.Minute})
		wantGet(t, c, k, "a.test", Miss)
		src.mu.Lock()
		delete(src.m, k)
		src.mu.Unlock()
		clk.advance(2 * time.Minute)
		wantGet(t, c, k, "", Miss)
		wantGet(t, c, k, "", NegativeHit)
	})
}

func TestInvalidate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		tests := []struct {
			name  string
			clear func(c *Cache, k entity.CacheKey)
		}{
			{"invalidate", func(c *Cache, k entity.CacheKey) { c.Invalidate(k) }},
			{"purge", func(c *Cache, _ entity.CacheKey) { c.Purge() }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b.Clear()
				src := newSource()
				k := src.put(svc("s1", "a.test"))
				missing := entity.CacheKey{Kind: entity.KindService, ID: "later"}
				c, _ := newCache(t, b, src, Options{})
				wantGet(t, c, k, "a.test", Miss)
				wantGet(t, c, missing, "", Miss)
				src.put(svc("s1", "b.test"))
				src.put(svc("later", "c.test"))
				wantGet(t, c, k, "a.test", Hit)
				wantGet(t, c, missing, "", NegativeHit)
				tt.clear(c, k)
				tt.clear(c, missing)
				if _, _, ok := c.Peek(k); ok {
					t.Fatal("Peek found an invalidated key")
				}
				wantGet(t, c, k, "b.test", Miss)
				wantGet(t, c, missing, "c.test", Miss)
			})
		}
	})
}

// TestInvalidateDuringLoad checks that a value read before an invalidation
// is not cached after it.
func TestInvalidateDuringLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		k := src.put(svc("s1", "old.test"))
		src.gate = make(chan struct{})
		c, _ := newCache(t, b, src, Options{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _, _ = c.Get(context.Background(), k)
		}()
		for src.calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		c.Invalidate(k)
		close(src.gate) // the load returns old.test after the invalidation
		<-done
		src.put(svc("s1", "new.test"))
		wantGet(t, c, k, "new.test", Miss)
	})
}

func TestPeekAndKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		k1 := src.put(svc("s1", "a.test"))
		k2 := src.put(&entity.Route{ID: "r1"})
		missing := entity.CacheKey{Kind: entity.KindService, ID: "zz"}
		c, _ := newCache(t, b, src, Options{})
		if _, _, ok := c.Peek(k1); ok {
			t.Fatal("Peek found a key never loaded")
		}
		for _, k := range []entity.CacheKey{k1, k2, missing} {
			if _, _, err := c.Get(context.Background(), k); err != nil {
				t.Fatal(err)
			}
		}
		if e, neg, ok := c.Peek(k1); !ok || neg || host(t, e) != "a.test" {
			t.Fatalf("Peek(k1) = %v, %v, %v", e, neg, ok)
		}
		if e, neg, ok := c.Peek(missing); !ok || !neg || e != nil {
			t.Fatalf("Peek(missing) = %v, %v, %v", e, neg, ok)
		}
		tests := []struct {
			prefix string
			limit  int
			want   []string
		}{
			{"services:", 0, []string{"services:s1", "services:zz"}},
			{"services:", 1, []string{"services:s1"}},
			{"routes:", 10, []string{"routes:r1"}},
			{"", 0, []string{"routes:r1", "services:s1", "services:zz"}},
			{"plugins:", 0, nil},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%d", tt.prefix, tt.limit), func(t *testing.T) {
				got := c.Keys(tt.prefix, tt.limit)
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("Keys = %v, want %v", got, tt.want)
				}
			})
		}
	})
}

func TestBounds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		c, _ := newCache(t, b, src, Options{L1Entries: 200, NegativeEntries: 100})
		for i := range 2000 {
			k := src.put(svc(fmt.Sprint("s", i), "h"))
			miss := entity.CacheKey{Kind: entity.KindKeyAuth, ID: fmt.Sprint("k", i)}
			for _, k := range []entity.CacheKey{k, miss} {
				if _, _, err := c.Get(context.Background(), k); err != nil {
					t.Fatal(err)
				}
			}
		}
		st := c.Stats()
		if st.Entries > 200+64 || st.Entries == 0 {
			t.Errorf("L1 entries = %d, want about 200", st.Entries)
		}
		if st.NegativeEntries > 100+64 || st.NegativeEntries == 0 {
			t.Errorf("negative entries = %d, want about 100", st.NegativeEntries)
		}
	})
}

func TestStats(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		k := src.put(svc("s1", "a.test"))
		c, _ := newCache(t, b, src, Options{Backend: "x"})
		missing := entity.CacheKey{Kind: entity.KindConsumer, ID: "c"}
		other := entity.CacheKey{Kind: "weird", ID: "w"}
		for _, k := range []entity.CacheKey{k, k, k, missing, missing, other} {
			if _, _, err := c.Get(context.Background(), k); err != nil {
				t.Fatal(err)
			}
		}
		st := c.Stats()
		byKind := map[entity.Kind]KindStats{}
		for _, ks := range st.Kinds {
			byKind[ks.Kind] = ks
		}
		tests := []struct {
			kind entity.Kind
			want KindStats
		}{
			{entity.KindService, KindStats{Kind: entity.KindService, Hits: 2, Misses: 1}},
			{entity.KindConsumer, KindStats{Kind: entity.KindConsumer, Misses: 1, NegativeHits: 1}},
			{"other", KindStats{Kind: "other", Misses: 1}},
		}
		for _, tt := range tests {
			t.Run(string(tt.kind), func(t *testing.T) {
				if got := byKind[tt.kind]; got != tt.want {
					t.Fatalf("stats = %+v, want %+v", got, tt.want)
				}
			})
		}
		if st.Backend != "x" || st.Entries != 1 || st.NegativeEntries != 2 {
			t.Fatalf("stats = %+v", st)
		}
		if _, ok := b.(cachebackends.Statser); ok != st.HasBackendStats {
			t.Fatalf("HasBackendStats = %v, backend is Statser: %v", st.HasBackendStats, ok)
		}
	})
}

func TestHitDoesNotAllocate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		id := "8f1a0a4e-5f5e-4c39-9f7c-1d1b2f3e4a5b"
		src.put(svc(id, "a.test"))
		c, _ := newCache(t, b, src, Options{TTL: time.Hour})
		ctx := context.Background()
		missing := entity.CacheKey{Kind: entity.KindKeyAuth, ID: "nope"}
		_, _, _ = c.Get(ctx, missing)
		buf := []byte("services/" + id) // request data the key is cut from
		tests := []struct {
			name string
			key  func() entity.CacheKey
			want Result
		}{
			{"hit", func() entity.CacheKey { return entity.CacheKey{Kind: entity.KindService, ID: string(buf[9:])} }, Hit},
			{"negative", func() entity.CacheKey { return missing }, NegativeHit},
		}
		_, _, _ = c.Get(ctx, tests[0].key())
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				k := tt.key()
				allocs := testing.AllocsPerRun(1000, func() {
					if _, res, _ := c.Get(ctx, k); res != tt.want {
						t.Fatalf("result = %d, want %d", res, tt.want)
					}
				})
				if allocs != 0 {
					t.Fatalf("%v allocs per Get, want 0", allocs)
				}
			})
		}
	})
}

// TestContextCanceledWhileWaiting checks that a caller waiting for
// another caller's load stops when its ctx ends, and that the load still
// serves the caller that started it.
func TestContextCanceledWhileWaiting(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b cachebackends.Backend) {
		src := newSource()
		k := src.put(svc("slow", "a.test"))
		src.gate = make(chan struct{})
		c, _ := newCache(t, b, src, Options{})
		leader := make(chan error, 1)
		go func() {
			_, _, err := c.Get(context.Background(), k)
			leader <- err
		}()
		for src.calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := c.Get(ctx, k); !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter err = %v, want context.Canceled", err)
		}
		close(src.gate)
		if err := <-leader; err != nil {
			t.Fatalf("leader err = %v", err)
		}
		wantGet(t, c, k, "a.test", Hit)
	})
}

// TestInvalidationRacingAStoreWins replays the interleaving in
// storeUnlessInvalidated's comment: an Invalidate that lands after a load
// checked gen but before its store finished must not leave the old value
// cached.
func TestInvalidationRacingAStoreWins(t *testing.T) {
	b := must(t)(freecache.New(freecache.Config{MemCacheSize: 1 << 20}))
	src := newSource()
	k := src.put(svc("s1", "old.test"))
	c, _ := newCache(t, b, src, Options{})
	c.beforeStore = func(key entity.CacheKey) {
		c.beforeStore = nil
		src.put(svc("s1", "new.test")) // the write committed...
		c.Invalidate(key)              // ...and its invalidation arrives
	}
	wantGet(t, c, k, "old.test", Miss) // this request read before the write
	wantGet(t, c, k, "new.test", Miss) // the old value was not kept
	wantGet(t, c, k, "new.test", Hit)
}
