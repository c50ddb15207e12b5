package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/store"
)

// testCounters checks store.Counters, for the datastores that keep them:
// counts start at 0, increments add up under concurrency, and an expired
// counter reads 0.
func testCounters(t *testing.T, s store.Store, _ options) {
	c, ok := s.(store.Counters)
	if !ok {
		t.Skip("this datastore keeps no counters")
	}
	later := time.Now().Add(time.Hour)
	keys := []string{"ratelimit:r:s:a:0:second", "ratelimit:r:s:a:0:minute"}
	got, err := c.Usage(ctx(t), keys)
	if err != nil || !slices.Equal(got, []int64{0, 0}) {
		t.Fatalf("Usage of new keys = %v, %v; want [0 0]", got, err)
	}
	const workers, each = 4, 5
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := c.Increment(ctx(t), keys, []time.Time{later, later}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, err = c.Usage(ctx(t), keys)
	if err != nil || !slices.Equal(got, []int64{workers * each, workers * each}) {
		t.Fatalf("Usage after %d increments = %v, %v", workers*each, got, err)
	}
	past := []string{"ratelimit:r:s:b:0:second"}
	if err := c.Increment(ctx(t), past, []time.Time{time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Usage(ctx(t), past); err != nil || got[0] != 0 {
		t.Fatalf("Usage of an expired counter = %v, %v; want 0", got, err)
	}
}
