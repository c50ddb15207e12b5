package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/basicauth"
	"github.com/sluice-gw/sluice/gateway/plugins/jwt"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	"github.com/sluice-gw/sluice/gateway/plugins/ratelimiting"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
)

// recorder is the test's Invalidator: it records the keys of every write.
type recorder struct {
	mu          sync.Mutex
	events      []string
	invalidated []string
}

func (r *recorder) Events(_ context.Context, keys []entity.CacheKey) []store.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := make([]store.Event, 0, len(keys))
	for _, k := range keys {
		r.events = append(r.events, k.String())
		evs = append(evs, store.Event{ID: uuid.NewString(), NodeID: "test-node",
			Channel: "invalidations", Data: k.String()})
	}
	return evs
}

func (r *recorder) Invalidated(_ context.Context, keys []entity.CacheKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.invalidated = append(r.invalidated, k.String())
	}
}

// take returns the keys recorded since the last take, sorted: those
// turned into events and those invalidated locally.
func (r *recorder) take() (events, invalidated []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	events, invalidated = r.events, r.invalidated
	r.events, r.invalidated = nil, nil
	slices.Sort(events)
	slices.Sort(invalidated)
	return events, invalidated
}

// keys returns the keys of the writes since the last call, checking that
// the keys written as events are those invalidated locally.
func (r *recorder) keys(t *testing.T) []string {
	t.Helper()
	ev, inv := r.take()
	if !slices.Equal(ev, inv) {
		t.Errorf("event keys %v != invalidated keys %v", ev, inv)
	}
	return ev
}

type testEnv struct {
	t     *testing.T
	srv   *httptest.Server
	store *sqlite.Store
	rec   *recorder
}

func newStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "admin.db")})
	return migrated(t, st, err)
}

// migrated fails t on err, else migrates st and closes it when t ends.
func migrated[S interface {
	store.Store
	store.Migrator
}](t testing.TB, st S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Up(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func testRegistry() *plugins.Registry {
	return plugins.NewRegistry(ratelimiting.New(), keyauth.New(nil), basicauth.New(nil), jwt.New(nil))
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	st := newStore(t)
	rec := &recorder{}
	h := New(Options{Store: st, Plugins: testRegistry(), Cluster: rec,
		NodeID: "node-1", Version: "1.2.3-test", Hostname: "test-host",
		Configuration: map[string]any{"database": "sqlite"}, Metrics: testMetrics})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testEnv{t: t, srv: srv, store: st, rec: rec}
}

// do sends a request and decodes the JSON answer (nil for an empty body).
func (e *testEnv) do(method, path, contentType, body string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewBufferString(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(data) == 0 {
		return resp.StatusCode, nil
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		e.t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, data)
	}
	return resp.StatusCode, out
}

func (e *testEnv) json(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	return e.do(method, path, "application/json", body)
}

// mustStatus sends a request and fails unless the answer has status want.
func (e *testEnv) must(want int, method, path, contentType, body string) map[string]any {
	e.t.Helper()
	got, out := e.do(method, path, contentType, body)
	if got != want {
		e.t.Fatalf("%s %s %s: status %d, want %d; body %v", method, path, body, got, want, out)
	}
	return out
}

func id(m map[string]any) string {
	s, _ := m["id"].(string)
	return s
}

func TestServicesAndRoutesEndToEnd(t *testing.T) {
	e := newEnv(t)
	const form = "application/x-www-form-urlencoded"

	svc := e.must(201, "POST", "/services", form, "name=example-service&url=https://example.com:8443/api")
	want := map[string]any{"name": "example-service", "protocol": "https", "host": "example.com",
		"port": 8443.0, "path": "/api", "retries": 5.0, "connect_timeout": 60000.0,
		"read_timeout": 60000.0, "write_timeout": 60000.0, "enabled": true, "tags": nil}
	for k, v := range want {
		if svc[k] != v {
			t.Errorf("service %s = %v, want %v", k, svc[k], v)
		}
	}
	if _, err := uuid.Parse(id(svc)); err != nil || svc["created_at"].(float64) == 0 {
		t.Fatalf("service id %q / created_at %v not set", svc["id"], svc["created_at"])
	}
	if _, ok := svc["url"]; ok {
		t.Error("url is write-only but was returned")
	}

	byName := e.must(200, "GET", "/services/example-service", "", "")
	byID := e.must(200, "GET", "/services/"+id(svc), "", "")
	if id(byName) != id(svc) || id(byID) != id(svc) {
		t.Fatalf("GET by name %q / by id %q, want %q", id(byName), id(byID), id(svc))
	}

	patched := e.must(200, "PATCH", "/services/example-service", "application/json", `{"retries": 3}`)
	if patched["retries"] != 3.0 || patched["host"] != "example.com" || patched["created_at"] != svc["created_at"] {
		t.Errorf("PATCH result %v", patched)
	}

	route := e.must(201, "POST", "/services/example-service/routes", form, "paths[]=/example&methods=GET&methods=POST&name=r1")
	if ref, _ := route["service"].(map[string]any); ref["id"] != id(svc) {
		t.Fatalf("route service = %v, want id %s", route["service"], id(svc))
	}
	routeWant := map[string]any{"strip_path": true, "preserve_host": false, "regex_priority": 0.0,
		"https_redirect_status_code": 426.0, "path_handling": "v0", "request_buffering": true,
		"response_buffering": true}
	for k, v := range routeWant {
		if route[k] != v {
			t.Errorf("route %s = %v, want %v", k, route[k], v)
		}
	}
	if got := route["protocols"].([]any); len(got) != 2 || got[0] != "http" || got[1] != "https" {
		t.Errorf("route protocols = %v", got)
	}
	if got := route["methods"].([]any); len(got) != 2 {
		t.Errorf("route methods = %v", got)
	}

	list := e.must(200, "GET", "/services/"+id(svc)+"/routes", "", "")
	if data := list["data"].([]any); len(data) != 1 || id(data[0].(map[string]any)) != id(route) {
		t.Errorf("nested routes = %v", list)
	}
	if s := e.must(200, "GET", "/routes/r1/service", "", ""); id(s) != id(svc) {
		t.Errorf("/routes/r1/service = %v", s)
	}
	e.must(200, "GET", "/services/example-service/routes/r1", "", "")

	// A service referenced by a route cannot be deleted.
	refused := e.must(400, "DELETE", "/services/example-service", "", "")
	if refused["code"] != 4.0 || refused["name"] != "foreign key violation" {
		t.Errorf("delete referenced service: %v", refused)
	}
	e.must(204, "DELETE", "/routes/r1", "", "")
	e.must(204, "DELETE", "/services/example-service", "", "")
	e.must(404, "GET", "/services/example-service", "", "")
	e.must(204, "DELETE", "/services/example-service", "", "")

	// PUT on a name creates the entity with that name, then replaces it.
	put := e.must(200, "PUT", "/services/by-put", "application/json", `{"host":"a.example"}`)
	if put["name"] != "by-put" || put["port"] != 80.0 {
		t.Errorf("PUT create: %v", put)
	}
	put2 := e.must(200, "PUT", "/services/by-put", "application/json", `{"host":"b.example","port":81}`)
	if id(put2) != id(put) || put2["host"] != "b.example" || put2["created_at"] != put["created_at"] {
		t.Errorf("PUT replace: %v (first %v)", put2, put)
	}
	newID := uuid.NewString()
	if put3 := e.must(200, "PUT", "/services/"+newID, "application/json", `{"host":"c.example"}`); id(put3) != newID {
		t.Errorf("PUT on a new id: %v", put3)
	}
}
