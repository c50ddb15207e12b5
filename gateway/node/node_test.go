package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/cachebackends/redis"
	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
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
	n := startNode(t, "redis", backend)
	ctx := context.Background()
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

// TestShutdownClosesPluginConnections: rate-limiting with policy redis
// opens its own connections to the Redis server; a node's Shutdown closes
// them. They are told apart on the server by their database (CLIENT LIST
// db=), which no other test uses.
func TestShutdownClosesPluginConnections(t *testing.T) {
	host, port := testenv.HostPort(t, "SLUICE_TEST_REDIS", "start a server with `bash tools/redis.sh start && eval $(bash tools/redis.sh env)`")
	const db = 13
	observer := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("%s:%d", host, port)})
	defer observer.Close()
	conns := func() int {
		t.Helper()
		list, err := observer.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatalf("CLIENT LIST: %v", err)
		}
		return strings.Count(list, fmt.Sprintf(" db=%d ", db))
	}
	if n := conns(); n != 0 {
		t.Skipf("%d connections on Redis database %d already (another user of it): cannot tell the node's apart", n, db)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()

	backend, err := freecache.New(freecache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "freecache", backend)
	ctx := context.Background()
	admin := "http://" + n.Addr("admin")
	for _, w := range []struct{ path, body string }{
		{"/services", `{"name":"up","url":"` + upstream.URL + `"}`},
		{"/services/up/routes", `{"name":"r","paths":["/r"]}`},
		{"/routes/r/plugins", fmt.Sprintf(`{"name":"rate-limiting","config":{"minute":100,"policy":"redis",`+
			`"redis_host":%q,"redis_port":%d,"redis_database":%d}}`, host, port, db)},
	} {
		resp, err := http.Post(admin+w.path, "application/json", strings.NewReader(w.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d, want 201", w.path, resp.StatusCode)
		}
	}
	var status int
	for deadline := time.Now().Add(5 * time.Second); status != http.StatusOK && time.Now().Before(deadline); {
		resp, err := http.Get("http://" + n.Addr("proxy") + "/r")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status = resp.StatusCode
	}
	if status != http.StatusOK {
		t.Fatalf("proxy answered %d, want 200 through the rate-limiting plugin", status)
	}
	if got := conns(); got == 0 {
		t.Fatalf("no connection on Redis database %d after a rate-limited request: the plugin does not use it", db)
	}

	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for deadline := time.Now().Add(2 * time.Second); conns() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // the server notices closed connections on its own time
	}
	if got := conns(); got != 0 {
		t.Errorf("%d connections of the rate-limiting plugin still open on Redis after Shutdown, want 0", got)
	}
}

// startNode starts a node on a fresh SQLite file with cache backend b
// (named cacheBackend in its configuration), its proxy and Admin API on
// loopback ports and no status listener; the caller shuts it down.
func startNode(t testing.TB, cacheBackend string, b cachebackends.Backend) *Node {
	t.Helper()
	return startNodeOn(t, openStore(t), cacheBackend, b)
}

// startNodeOn is startNode on the datastore st.
func startNodeOn(t testing.TB, st store.Store, cacheBackend string, b cachebackends.Backend) *Node {
	t.Helper()
	cfg := config.Default()
	cfg.CacheBackend = cacheBackend
	cfg.ProxyListen, cfg.AdminListen, cfg.StatusListen = "127.0.0.1:0", "127.0.0.1:0", "off"
	n, err := New(Options{Config: cfg, Store: st, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// openStore returns a migrated SQLite store in a temporary directory,
// closed when the test ends.
func openStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(tb.TempDir(), "n.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Up(ctx); err != nil {
		tb.Fatal(err)
	}
	return st
}
