package freecache_test

import (
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/cachetest"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
)

func TestConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, capacity int) cachebackends.Backend {
		b, err := freecache.New(freecache.Config{MemCacheSize: capacity})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, cachetest.TTLGranularity(time.Second))
}

func TestNewRejectsBadSize(t *testing.T) {
	_, err := freecache.New(freecache.Config{MemCacheSize: -1})
	if err == nil {
		t.Fatal("New accepted mem_cache_size=-1")
	}
}
