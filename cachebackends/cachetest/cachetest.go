// Package cachetest is the conformance suite every cachebackends.Backend
// passes: call Run from the adapter's test with a constructor for fresh
// backends.
package cachetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
)

// Option declares what a backend cannot do, so that Run skips the checks
// that do not apply.
type Option func(*config)

type config struct {
	retainsNothing bool
	unbounded      bool
	ttl            time.Duration
}

// RetainsNothing declares a backend that stores nothing (every Get
// misses); Run then checks only that it does so without failing.
func RetainsNothing() Option { return func(c *config) { c.retainsNothing = true } }

// Unbounded declares a backend whose size the node's memory does not bound
// (e.g. a remote server); Run skips the capacity checks.
func Unbounded() Option { return func(c *config) { c.unbounded = true } }

// TTLGranularity sets the shortest TTL the backend honours (e.g. one
// second); Run uses it for the expiry checks. The default is 100ms.
func TTLGranularity(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// Capacity is the capacityBytes Run passes to newBackend. It is at least
// 512 KiB, freecache's minimum.
const Capacity = 1 << 20

// Run runs the suite. newBackend returns an empty backend bounded by about
// capacityBytes; it is called once per subtest. A backend that is a
// cachebackends.Closer is closed when its subtest ends.
func Run(t *testing.T, newBackend func(t *testing.T, capacityBytes int) cachebackends.Backend, opts ...Option) {
	cfg := config{ttl: 100 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	fresh := func(t *testing.T) cachebackends.Backend {
		b := newBackend(t, Capacity)
		if c, ok := b.(cachebackends.Closer); ok {
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		return b
	}
	if cfg.retainsNothing {
		t.Run("RetainsNothing", func(t *testing.T) { testRetainsNothing(t, fresh(t)) })
		return
	}
	tests := []struct {
		name string
		run  func(t *testing.T, b cachebackends.Backend, cfg config)
		skip bool
	}{
		{"GetSetOverwrite", testGetSet, false},
		{"Delete", testDelete, false},
		{"Clear", testClear, false},
		{"ValuesAreCopies", testCopies, false},
		{"TTLExpiry", testTTL, false},
		{"Capacity", testCapacity, cfg.unbounded},
		{"Concurrent", testConcurrent, false},
		{"Stats", testStats, false},
		{"Range", testRange, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("backend declares it does not apply")
			}
			tt.run(t, fresh(t), cfg)
		})
	}
}

func set(t *testing.T, b cachebackends.Backend, k, v string, ttl time.Duration) {
	t.Helper()
	if err := b.Set([]byte(k), []byte(v), ttl); err != nil {
		t.Fatalf("Set(%q): %v", k, err)
	}
}

func want(t *testing.T, b cachebackends.Backend, k string, v string, ok bool) {
	t.Helper()
	got, found := b.Get([]byte(k))
	if found != ok || (ok && string(got) != v) {
		t.Fatalf("Get(%q) = %q, %v; want %q, %v", k, got, found, v, ok)
	}
}

func testRetainsNothing(t *testing.T, b cachebackends.Backend) {
	if err := b.Set([]byte("k"), []byte("v"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	want(t, b, "k", "", false)
	b.Delete([]byte("k"))
	b.Clear()
	want(t, b, "k", "", false)
}

func testGetSet(t *testing.T, b cachebackends.Backend, _ config) {
	tests := []struct{ name, key, value string }{
		{"plain", "services:1", "one"},
		{"overwrite", "services:1", "uno"},
		{"empty value", "routes:e", ""},
		{"binary", "k\x00\xff", "\x00\x01\xfe"},
	}
	want(t, b, "services:1", "", false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set(t, b, tt.key, tt.value, 0)
			want(t, b, tt.key, tt.value, true)
		})
	}
}

func testDelete(t *testing.T, b cachebackends.Backend, _ config) {
	set(t, b, "a", "1", 0)
	set(t, b, "b", "2", 0)
	b.Delete([]byte("a"))
	b.Delete([]byte("never-set"))
	want(t, b, "a", "", false)
	want(t, b, "b", "2", true)
}

func testClear(t *testing.T, b cachebackends.Backend, _ config) {
	for i := range 10 {
		set(t, b, fmt.Sprint("k", i), "v", 0)
	}
	b.Clear()
	for i := range 10 {
		want(t, b, fmt.Sprint("k", i), "", false)
	}
	set(t, b, "after", "v", 0)
	want(t, b, "after", "v", true)
}

func testCopies(t *testing.T, b cachebackends.Backend, _ config) {
	k, v := []byte("key"), []byte("value")
	if err := b.Set(k, v, 0); err != nil {
		t.Fatal(err)
	}
	copy(k, "KEY")
	copy(v, "VALUE")
	want(t, b, "key", "value", true)
	got, _ := b.Get([]byte("key"))
	copy(got, "XXXXX")
	want(t, b, "key", "value", true)
}

func testTTL(t *testing.T, b cachebackends.Backend, cfg config) {
	set(t, b, "short", "v", cfg.ttl)
	set(t, b, "forever", "v", 0)
	set(t, b, "long", "v", time.Hour)
	deadline := time.Now().Add(cfg.ttl + 2*time.Second)
	for {
		if _, ok := b.Get([]byte("short")); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with ttl=%v still present after %v", cfg.ttl, cfg.ttl+2*time.Second)
		}
		time.Sleep(cfg.ttl / 10)
	}
	want(t, b, "forever", "v", true)
	want(t, b, "long", "v", true)
}

func testCapacity(t *testing.T, b cachebackends.Backend, _ config) {
	value := bytes.Repeat([]byte("x"), 200)
	n := 10 * Capacity / 200
	for i := range n {
		// A refused Set is fine: the backend is full and says so.
		_ = b.Set(fmt.Appendf(nil, "fill:%08d", i), value, 0)
	}
	retained := 0
	for i := range n {
		if _, ok := b.Get(fmt.Appendf(nil, "fill:%08d", i)); ok {
			retained++
		}
	}
	if retained == 0 || retained*200 > 2*Capacity {
		t.Fatalf("retained %d of %d entries of 200 bytes (%d bytes) in a %d-byte backend; want some, bounded by about the capacity",
			retained, n, retained*200, Capacity)
	}
	if s, ok := b.(cachebackends.Statser); ok {
		st := s.Stats()
		if st.Evictions == 0 {
			t.Errorf("Stats().Evictions = 0 after filling 10x the capacity")
		}
		if st.Entries > int64(retained)*2 && st.Entries > 100 {
			t.Errorf("Stats().Entries = %d, but %d entries are retained", st.Entries, retained)
		}
	}
}

func testConcurrent(t *testing.T, b cachebackends.Backend, _ config) {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Appendf(nil, "c:%d", i%50)
				switch (i + w) % 4 {
				case 0, 1:
					if err := b.Set(k, append([]byte("v-"), k...), time.Minute); err != nil {
						errs <- err
						return
					}
				case 2:
					if v, ok := b.Get(k); ok && string(v) != "v-"+string(k) {
						errs <- fmt.Errorf("Get(%q) = %q", k, v)
						return
					}
				case 3:
					b.Delete(k)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testStats(t *testing.T, b cachebackends.Backend, _ config) {
	s, ok := b.(cachebackends.Statser)
	if !ok {
		t.Skip("backend is not a cachebackends.Statser")
	}
	for i := range 20 {
		set(t, b, fmt.Sprint("s:", i), "0123456789", 0)
	}
	st := s.Stats()
	if st.Entries != -1 && st.Entries < 20 {
		t.Errorf("Stats().Entries = %d after 20 Sets, want >= 20 or -1", st.Entries)
	}
	if st.Bytes != -1 && st.Bytes < 20*10 {
		t.Errorf("Stats().Bytes = %d after 20 Sets of 10 bytes, want >= 200 or -1", st.Bytes)
	}
	if st.Evictions < -1 {
		t.Errorf("Stats().Evictions = %d", st.Evictions)
	}
}

func testRange(t *testing.T, b cachebackends.Backend, _ config) {
	r, ok := b.(cachebackends.Ranger)
	if !ok {
		t.Skip("backend is not a cachebackends.Ranger")
	}
	wantKeys := map[string]bool{}
	for i := range 20 {
		k := fmt.Sprint("r:", i)
		set(t, b, k, "v", 0)
		wantKeys[k] = true
	}
	seen := map[string]bool{}
	r.Range(func(k []byte) bool {
		seen[string(k)] = true
		return true
	})
	for k := range wantKeys {
		if !seen[k] {
			t.Errorf("Range did not visit %q", k)
		}
	}
	calls := 0
	r.Range(func([]byte) bool {
		calls++
		return false
	})
	if calls != 1 {
		t.Errorf("Range called fn %d times after it returned false, want 1", calls)
	}
}
