package redis_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/cachetest"
	"github.com/sluice-gw/sluice/cachebackends/redis"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// config reads the test server's address from SLUICE_TEST_REDIS. Each call
// gets its own key prefix so that tests do not see each other's keys.
func config(t *testing.T) redis.Config {
	t.Helper()
	host, p := testenv.HostPort(t, "SLUICE_TEST_REDIS", "start a server with `bash tools/redis.sh start && eval $(bash tools/redis.sh env)`")
	return redis.Config{Host: host, Port: p, Prefix: fmt.Sprintf("sluicetest:%s:%d:", t.Name(), time.Now().UnixNano())}
}

func TestConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, _ int) cachebackends.Backend {
		b, err := redis.New(config(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Clear)
		return b
	}, cachetest.Unbounded())
}

func TestClearLeavesOtherPrefixes(t *testing.T) {
	c1, c2 := config(t), config(t)
	c2.Prefix += "other:"
	b1, err := redis.New(c1)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	b2, err := redis.New(c2)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	defer b2.Clear()
	if err := b2.Set([]byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	b1.Clear()
	if _, ok := b2.Get([]byte("k")); !ok {
		t.Fatal("Clear on one prefix removed another prefix's key")
	}
}

func TestNewErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  redis.Config
		want string
	}{
		{"no host", redis.Config{}, "redis_host"},
		{"bad port", redis.Config{Host: "127.0.0.1", Port: 70000}, "redis_port"},
		{"bad database", redis.Config{Host: "127.0.0.1", Database: -1}, "redis_database"},
		{"unreachable", redis.Config{Host: "127.0.0.1", Port: 1, Timeout: 100 * time.Millisecond}, "redis_host:redis_port=127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redis.New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %q", err, tt.want)
			}
		})
	}
}
