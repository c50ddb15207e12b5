// Package cachebench compares the cache backends, raw and through
// gateway/cache, on gateway workloads (after otter's
// benchmarks/throughput). Run:
//
//	go test -run XXX -bench . -benchmem -cpu 1,2 ./bench/cachebench
//	go test -run XXX -bench GC -benchtime 1x ./bench/cachebench
package cachebench

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/cachebackends/lru"
	"github.com/sluice-gw/sluice/cachebackends/none"
	"github.com/sluice-gw/sluice/cachebackends/otter"
	"github.com/sluice-gw/sluice/cachebackends/redis"
	"github.com/sluice-gw/sluice/cachebackends/ristretto"
)

// adapter builds one backend bounded by size bytes.
type adapter struct {
	name string
	new  func(b testing.TB, size int) cachebackends.Backend
}

// adapters lists every backend; redis is included when SLUICE_TEST_REDIS
// names a server (bash tools/redis.sh start; eval $(bash tools/redis.sh env)).
func adapters() []adapter {
	list := []adapter{
		{"freecache", func(b testing.TB, size int) cachebackends.Backend {
			return check(b)(freecache.New(freecache.Config{MemCacheSize: size}))
		}},
		{"otter", func(b testing.TB, size int) cachebackends.Backend {
			return check(b)(otter.New(otter.Config{MemCacheSize: size}))
		}},
		{"ristretto", func(b testing.TB, size int) cachebackends.Backend {
			return check(b)(ristretto.New(ristretto.Config{MemCacheSize: size}))
		}},
		{"lru", func(b testing.TB, size int) cachebackends.Backend {
			return check(b)(lru.New(lru.Config{MemCacheSize: size}))
		}},
		{"none", func(b testing.TB, _ int) cachebackends.Backend { return check(b)(none.New(none.Config{})) }},
	}
	if addr := os.Getenv("SLUICE_TEST_REDIS"); addr != "" {
		list = append(list, adapter{"redis", func(b testing.TB, _ int) cachebackends.Backend {
			host, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			be := check(b)(redis.New(redis.Config{Host: host, Port: p,
				Prefix: "cachebench:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"}))
			b.Cleanup(be.Clear)
			return be
		}})
	}
	return list
}

// check fails b on a constructor error and closes the backend when b ends.
func check(b testing.TB) func(cachebackends.Backend, error) cachebackends.Backend {
	return func(be cachebackends.Backend, err error) cachebackends.Backend {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
		if c, ok := be.(cachebackends.Closer); ok {
			b.Cleanup(func() { _ = c.Close() })
		}
		return be
	}
}
