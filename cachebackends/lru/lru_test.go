package lru_test

import (
	"testing"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/cachetest"
	"github.com/sluice-gw/sluice/cachebackends/lru"
)

func TestConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, capacity int) cachebackends.Backend {
		b, err := lru.New(lru.Config{MemCacheSize: capacity})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestNewRejectsBadSize(t *testing.T) {
	_, err := lru.New(lru.Config{MemCacheSize: -1})
	if err == nil {
		t.Fatal("New accepted mem_cache_size=-1")
	}
}
