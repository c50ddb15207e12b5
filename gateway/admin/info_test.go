package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sluice-gw/sluice/cachebackends/lru"
	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

func TestInfoStatusAndEnabledPlugins(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/plugins", "application/json", `{"name":"rate-limiting","config":{"second":1}}`)

	info := e.must(200, "GET", "/", "", "")
	for k, want := range map[string]any{"version": KongVersion, "sluice_version": "1.2.3-test", "hostname": "test-host", "node_id": "node-1"} {
		if info[k] != want {
			t.Errorf("GET / %s = %v, want %v", k, info[k], want)
		}
	}
	if _, ok := info["tagline"].(string); !ok {
		t.Error("GET / has no tagline")
	}
	pl := info["plugins"].(map[string]any)
	if avail := pl["available_on_server"].(map[string]any); avail["key-auth"] != true || avail["rate-limiting"] != true {
		t.Errorf("available_on_server %v", avail)
	}
	if en := pl["enabled_in_cluster"].([]any); len(en) != 1 || en[0] != "rate-limiting" {
		t.Errorf("enabled_in_cluster %v", en)
	}
	if cfg := info["configuration"].(map[string]any); cfg["database"] != "sqlite" {
		t.Errorf("configuration %v", cfg)
	}

	enabled := e.must(200, "GET", "/plugins/enabled", "", "")
	if names := enabled["enabled_plugins"].([]any); len(names) != 4 || names[0] != "basic-auth" || names[2] != "key-auth" {
		t.Errorf("enabled_plugins %v", names)
	}

	tests := []struct {
		name, query string
		status      int
	}{
		{"default unit", "", 200},
		{"bytes", "?unit=b", 200},
		{"gigabytes", "?unit=g&scale=4", 200},
		{"bad unit", "?unit=x", 400},
		{"bad scale", "?scale=abc", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := e.must(tt.status, "GET", "/status"+tt.query, "", "")
			if tt.status != 200 {
				return
			}
			if db := st["database"].(map[string]any); db["reachable"] != true {
				t.Fatalf("database %v", db)
			}
			vm := st["memory"].(map[string]any)["workers_lua_vms"].([]any)[0].(map[string]any)
			if vm["http_allocated_gc"] == nil || vm["pid"] == nil {
				t.Fatalf("memory %v", st["memory"])
			}
		})
	}
}

func TestStatusUnreachable(t *testing.T) {
	st := newStore(t)
	srv := httptest.NewServer(New(Options{Store: st, Reachable: func(context.Context) bool { return false }}))
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, srv: srv, store: st, rec: &recorder{}}
	if db := e.must(200, "GET", "/status", "", "")["database"].(map[string]any); db["reachable"] != false {
		t.Fatalf("database %v, want unreachable", db)
	}
}

func TestCacheEndpoints(t *testing.T) {
	st := newStore(t)
	backend, err := lru.New(lru.Config{MemCacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	load := func(ctx context.Context, key entity.CacheKey) (entity.Entity, error) {
		rec, err := st.Get(ctx, key.Kind, key.ID)
		if err != nil {
			return nil, err
		}
		return entity.Decode(key.Kind, rec.Data)
	}
	c := cache.New(backend, load, cache.Options{})
	srv := httptest.NewServer(New(Options{Store: st, Cache: c, Plugins: testRegistry()}))
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, srv: srv, store: st, rec: &recorder{}}

	svc := id(e.must(201, "POST", "/services", "application/json", `{"name":"s","host":"cached.example"}`))
	ctx := context.Background()
	hit := entity.CacheKey{Kind: entity.KindService, ID: svc}
	miss := entity.CacheKey{Kind: entity.KindService, ID: "00000000-0000-0000-0000-000000000000"}
	if _, _, err := c.Get(ctx, hit); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.Get(ctx, miss); err != nil || got != nil {
		t.Fatalf("miss: %v %v", got, err)
	}

	tests := []struct {
		name, method, path string
		status             int
		check              func(t *testing.T, out map[string]any)
	}{
		{"cached entity", "GET", "/cache/" + hit.String(), 200, func(t *testing.T, out map[string]any) {
			if out["host"] != "cached.example" || id(out) != svc {
				t.Fatalf("cached %v", out)
			}
		}},
		{"cached miss", "GET", "/cache/" + miss.String(), 404, nil},
		{"nothing cached", "GET", "/cache/routes:" + svc, 404, nil},
		{"not a cache key", "GET", "/cache/nokey", 404, nil},
		{"list keys", "GET", "/cache?prefix=services:", 200, func(t *testing.T, out map[string]any) {
			keys := out["data"].([]any)
			if !slices.Contains(keys, any(hit.String())) {
				t.Fatalf("keys %v lack %s", keys, hit)
			}
		}},
		{"list keys bad size", "GET", "/cache?size=x", 400, nil},
		{"list keys size 1", "GET", "/cache?size=1", 200, func(t *testing.T, out map[string]any) {
			if keys := out["data"].([]any); len(keys) != 1 {
				t.Fatalf("keys %v, want 1", keys)
			}
		}},
		{"invalidate", "DELETE", "/cache/" + hit.String(), 204, func(t *testing.T, _ map[string]any) {
			if _, _, ok := c.Peek(hit); ok {
				t.Fatal("key still cached after DELETE /cache/{key}")
			}
		}},
		{"purge", "DELETE", "/cache", 204, func(t *testing.T, _ map[string]any) {
			if keys := c.Keys("", 10); len(keys) != 0 {
				t.Fatalf("keys %v after purge", keys)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.must(tt.status, tt.method, tt.path, "", "")
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

// panicky is a PluginValidator that panics, to exercise the recover
// middleware.
type panicky struct{}

func (panicky) Validate(string, json.RawMessage) (json.RawMessage, map[string]string, error) {
	panic("boom")
}
func (panicky) Names() []string { return []string{"boom"} }

func TestPanicAnswers500(t *testing.T) {
	st := newStore(t)
	srv := httptest.NewServer(New(Options{Store: st, Plugins: panicky{}}))
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, srv: srv, store: st, rec: &recorder{}}
	out := e.must(500, "POST", "/plugins", "application/json", `{"name":"boom"}`)
	if out["message"] != "An unexpected error occurred" {
		t.Fatalf("body %v", out)
	}
	e.must(200, "GET", "/plugins/enabled", "", "")
}

func TestStoreErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"unavailable", fmt.Errorf("sqlite: cannot get: %w", store.ErrUnavailable), 503,
			`{"message":"The database is unreachable; try again later"}`},
		{"not found", fmt.Errorf("x: %w", store.ErrNotFound), 404, `{"message":"Not found"}`},
		{"other", errors.New("disk on fire"), 500, `{"message":"An unexpected error occurred"}`},
		{"referenced", &store.ReferencedError{Kind: entity.KindService, ID: "x", Referrer: entity.KindRoute}, 400,
			`{"code":4,"name":"foreign key violation","message":"an existing 'routes' entity references this 'services' entity","fields":{"@referenced_by":"routes"}}`},
		{"unique", &store.UniqueError{Kind: entity.KindService, Field: "name", Value: "a"}, 409,
			`{"code":5,"name":"unique constraint violation","message":"UNIQUE violation detected on '{name=\"a\"}'","fields":{"name":"a"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := storeError(tt.err, nil)
			body, err := json.Marshal(ae.body)
			if err != nil {
				t.Fatal(err)
			}
			if ae.status != tt.status || string(body) != tt.body {
				t.Fatalf("got %d %s, want %d %s", ae.status, body, tt.status, tt.body)
			}
		})
	}
}
