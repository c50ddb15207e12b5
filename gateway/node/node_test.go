package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/cachebackends/redis"
	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// TestShutdownClosesCacheBackend: a node started on a Redis cache backend
// closes the backend's connection pool on Shutdown, once its listeners
// have stopped, so that the process leaves no connection open on the
// server.
func TestShutdownClosesCacheBackend(t *testing.T) {
	host, port := testenv.HostPort(t, "SLUICE_TEST_REDIS", "start a server with `bash tools/redis.sh start && eval $(bash tools/redis.sh env)`")
	backend, err := redis.New(redis.Config{Host: host, Port: port, Prefix: fmt.Sprintf("sluicetest:%s:%d:", t.Name(), time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.CacheBackend = "redis"
	cfg.ProxyListen, cfg.AdminListen, cfg.StatusListen = "127.0.0.1:0", "127.0.0.1:0", "off"
	n, err := New(Options{Config: cfg, Store: openStore(t), Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := backend.Set([]byte("k"), []byte("v"), time.Minute); err != nil { // expires on its own
		t.Fatalf("Set while the node runs: %v", err)
	}

	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := backend.Set([]byte("k"), []byte("v"), time.Minute); !errors.Is(err, goredis.ErrClosed) {
		t.Fatalf("Set after Shutdown = %v, want the pool closed (%v)", err, goredis.ErrClosed)
	}
}
