package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttermination"
	"github.com/sluice-gw/sluice/gateway/proxy"
	"github.com/sluice-gw/sluice/gateway/router"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
)

// served is the Proxy side: it keeps the last snapshots swapped in.
type served struct {
	r     atomic.Pointer[router.Router]
	p     atomic.Pointer[plugins.Set]
	certs atomic.Pointer[proxy.ClientCertificates]
}

func (s *served) SetRouter(r *router.Router) { s.r.Store(r) }
func (s *served) SetPlugins(p *plugins.Set)  { s.p.Store(p) }
func (s *served) SetClientCertificates(c proxy.ClientCertificates) {
	s.certs.Store(&c)
}

// match returns the id of the route the served table picks for path, and
// its service's host ("" when none).
func (s *served) match(path string) (route, host string) {
	m, ok := s.r.Load().Match("GET", "", path, nil)
	if !ok {
		return "", ""
	}
	if m.Service != nil {
		host = m.Service.Host
	}
	return m.Route.ID, host
}

// openStore returns a migrated SQLite store in a temporary directory,
// closed when the test ends.
func openStore(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	ctx := context.Background()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "s.db")
	}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Up(ctx); err != nil {
		tb.Fatal(err)
	}
	return st
}

func op(tb testing.TB, typ store.OpType, e entity.Entity) store.Op {
	tb.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		tb.Fatal(err)
	}
	return store.Op{Type: typ, Record: store.NewRecord(e, data)}
}

// fixture is Snapshots over a real SQLite store, with what its observers
// saw.
type fixture struct {
	st    store.Store
	s     *Snapshots
	out   *served
	reg   *prometheus.Registry
	mu    sync.Mutex
	moves [][2]router.Target
	full  int
}

func newFixture(t *testing.T, st store.Store) *fixture {
	f := &fixture{st: st, out: &served{}, reg: prometheus.NewRegistry()}
	f.s = New(st, plugins.NewRegistry(requesttermination.New()), f.out, Options{
		Logger: quiet, Registerer: f.reg,
		OnRouteChanged: func(was, now router.Target) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.moves = append(f.moves, [2]router.Target{was, now})
		},
		OnRebuilt: func([]router.Target) { f.full++ },
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.s.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := f.s.RebuildAll(wctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// write applies one write to the store and its invalidation keys to the
// snapshots, as a node does with an event.
func (f *fixture) write(t *testing.T, typ store.OpType, e entity.Entity) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.st.Apply(ctx, []store.Op{op(t, typ, e)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Wait(ctx, f.s.Invalidate(entity.InvalidationKeys(e), false)); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) lastMove() [2]router.Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.moves) == 0 {
		return [2]router.Target{}
	}
	return f.moves[len(f.moves)-1]
}

func svc(id, host string) *entity.Service {
	return &entity.Service{ID: id, Host: host, Port: 80, Protocol: "http"}
}

func rt(id, svcID string, paths ...string) *entity.Route {
	r := &entity.Route{ID: id, Protocols: []string{"http", "https"}, Paths: paths, StripPath: true, PathHandling: "v0"}
	if svcID != "" {
		r.Service = &entity.Ref{ID: svcID}
	}
	return r
}

// TestIncrementalChanges walks one of each change through the snapshots
// and checks what the proxy is served after each, that none costs a full
// rebuild, what the observer hears, and that a snapshot taken earlier
// keeps answering as before.
func TestIncrementalChanges(t *testing.T) {
	const s1, s2 = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
	const r1, r2 = "00000000-0000-4000-8001-000000000001", "00000000-0000-4000-8001-000000000002"
	st := openStore(t, "")
	ctx := context.Background()
	if err := st.Apply(ctx, []store.Op{op(t, store.OpInsert, svc(s1, "up1")), op(t, store.OpInsert, rt(r1, s1, "/a"))}, nil); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, st)
	rebuilds := func() float64 { return testutil.ToFloat64(f.s.routes.m.rebuilds) }
	if id, host := f.out.match("/a"); id != r1 || host != "up1" || rebuilds() != 1 {
		t.Fatalf("after start: /a -> %q at %q, %v rebuilds; want r1 at up1 after 1 rebuild", id, host, rebuilds())
	}

	// A route of a service this node has not read yet.
	f.write(t, store.OpInsert, svc(s2, "up2"))
	f.write(t, store.OpInsert, rt(r2, s2, "/b"))
	if id, host := f.out.match("/b/x"); id != r2 || host != "up2" {
		t.Fatalf("new route: /b/x -> %q at %q, want r2 at up2", id, host)
	}
	if got := f.s.Upstreams(); len(got) != 2 || got[1].Target != "up2:80" {
		t.Errorf("upstreams after a new service: %+v", got)
	}

	// Rename: the observer hears the old and the new version.
	renamed := rt(r1, s1, "/a")
	name := "first"
	renamed.Name = &name
	f.write(t, store.OpUpdate, renamed)
	if mv := f.lastMove(); mv[0].Route.Name != nil || mv[1].Route.Name == nil || *mv[1].Route.Name != "first" {
		t.Errorf("rename reported as %+v -> %+v", mv[0].Route, mv[1].Route)
	}

	// A service's host change reaches its routes and the upstream list.
	f.write(t, store.OpUpdate, svc(s1, "up1b"))
	if id, host := f.out.match("/a"); id != r1 || host != "up1b" {
		t.Fatalf("after service host change: /a -> %q at %q, want r1 at up1b", id, host)
	}
	if mv := f.lastMove(); mv[0].Service.Host != "up1" || mv[1].Service.Host != "up1b" {
		t.Errorf("service change reported as %q -> %q", mv[0].Service.Host, mv[1].Service.Host)
	}
	if got := f.s.Upstreams(); len(got) != 2 || got[0].Target != "up1b:80" {
		t.Errorf("upstreams after a host change: %+v, want up1b:80 and up2:80", got)
	}

	// A route moved to another path, then deleted; the earlier snapshot
	// does not change.
	before := f.out.r.Load()
	f.write(t, store.OpUpdate, rt(r2, s2, "/c"))
	if id, _ := f.out.match("/b"); id != "" {
		t.Errorf("/b still routed to %q after the route moved to /c", id)
	}
	f.write(t, store.OpDelete, rt(r2, s2))
	if id, _ := f.out.match("/c"); id != "" {
		t.Errorf("/c still routed to %q after its route was deleted", id)
	}
	if mv := f.lastMove(); mv[0].Route.ID != r2 || mv[1].Route != nil {
		t.Errorf("delete reported as %+v -> %+v", mv[0].Route, mv[1].Route)
	}
	if m, ok := before.Match("GET", "", "/b", nil); !ok || m.Route.ID != r2 {
		t.Error("a snapshot taken before the changes lost route r2")
	}

	// Plugins: add, then delete, without listing them all.
	p := &entity.Plugin{ID: "00000000-0000-4000-8002-000000000001", Name: "request-termination", Enabled: true,
		Config: json.RawMessage(`{"status_code":418}`), Protocols: []string{"http"}}
	f.write(t, store.OpInsert, p)
	if f.out.p.Load().Len() != 1 {
		t.Fatalf("plugin set has %d plugins after an insert, want 1", f.out.p.Load().Len())
	}
	f.write(t, store.OpDelete, p)
	if f.out.p.Load().Len() != 0 {
		t.Fatalf("plugin set has %d plugins after a delete, want 0", f.out.p.Load().Len())
	}

	if rebuilds() != 1 || f.full != 1 {
		t.Errorf("%v route table rebuilds (observer saw %d), want only the start-up one", rebuilds(), f.full)
	}
	if n := testutil.ToFloat64(f.s.routes.m.changes.WithLabelValues("plugins")); n != 2 {
		t.Errorf("plugin changes applied = %v, want 2", n)
	}

	// A version key alone names no change: everything is read again.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.s.Wait(ctx, f.s.Invalidate([]entity.CacheKey{entity.RouterVersion}, false)); err != nil {
		t.Fatal(err)
	}
	if rebuilds() != 2 || f.full != 2 {
		t.Errorf("router:version alone: %v rebuilds, want 2", rebuilds())
	}
}

// flaky is a real store whose next Gets fail as a datastore outage does.
type flaky struct {
	store.Store
	fail atomic.Int32
}

func (s *flaky) Get(ctx context.Context, kind entity.Kind, id string) (store.Record, error) {
	if s.fail.Add(-1) >= 0 {
		return store.Record{}, fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return s.Store.Get(ctx, kind, id)
}

// TestFailedReadRetries: while reads fail, the previous table keeps
// serving and the change stays pending; it is applied once reads work,
// without a full rebuild.
func TestFailedReadRetries(t *testing.T) {
	const r1 = "00000000-0000-4000-8001-000000000001"
	st := &flaky{Store: openStore(t, "")}
	f := newFixture(t, st)
	st.fail.Store(2)
	ctx := context.Background()
	if err := st.Apply(ctx, []store.Op{op(t, store.OpInsert, rt(r1, "", "/a"))}, nil); err != nil {
		t.Fatal(err)
	}
	tk := f.s.Invalidate([]entity.CacheKey{{Kind: entity.KindRoute, ID: r1}}, false)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := f.s.Wait(short, tk); err == nil {
		t.Fatal("the change was reported applied while the datastore failed")
	}
	if id, _ := f.out.match("/a"); id != "" {
		t.Fatalf("/a routed to %q before the route could be read", id)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := f.s.Wait(wctx, tk); err != nil {
		t.Fatalf("the change was never applied after the datastore came back: %v", err)
	}
	if id, _ := f.out.match("/a"); id != r1 {
		t.Fatalf("/a -> %q after the retry, want r1", id)
	}
	if n := testutil.ToFloat64(f.s.routes.m.rebuilds); n != 1 {
		t.Errorf("%v rebuilds, want the start-up one only: a failed read is retried, not rebuilt", n)
	}
}

// TestVersionKeys: a version key names no entity, so it rebuilds its
// snapshot from everything stored, even beside entity keys (an older
// node's write emitted one with each entity key); writes of this version
// emit entity keys alone (TestIncrementalChanges rebuilds nothing).
func TestVersionKeys(t *testing.T) {
	const r1, r2 = "00000000-0000-4000-8001-000000000001", "00000000-0000-4000-8001-000000000002"
	st := openStore(t, "")
	f := newFixture(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := entity.InvalidationKeys(rt(r1, "", "/a")); len(got) != 1 || got[0] != (entity.CacheKey{Kind: entity.KindRoute, ID: r1}) {
		t.Fatalf("a route write emits %v, want its own key alone", got)
	}
	rebuilds := func() float64 { return testutil.ToFloat64(f.s.routes.m.rebuilds) }
	// Stored with no event: only a full rebuild finds it.
	if err := st.Apply(ctx, []store.Op{op(t, store.OpInsert, rt(r1, "", "/a"))}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Wait(ctx, f.s.Invalidate([]entity.CacheKey{entity.RouterVersion}, false)); err != nil {
		t.Fatal(err)
	}
	if id, _ := f.out.match("/a"); id != r1 || rebuilds() != 2 {
		t.Fatalf("router:version: /a -> %q after %v rebuilds, want r1 after 2 (start-up and this one)", id, rebuilds())
	}
	if err := st.Apply(ctx, []store.Op{op(t, store.OpInsert, rt(r2, "", "/b"))}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Wait(ctx, f.s.Invalidate([]entity.CacheKey{{Kind: entity.KindRoute, ID: r1}, entity.RouterVersion}, false)); err != nil {
		t.Fatal(err)
	}
	if id, _ := f.out.match("/b"); id != r2 || rebuilds() != 3 {
		t.Fatalf("an older node's pair: /b -> %q after %v rebuilds, want r2 after 3", id, rebuilds())
	}
	p := &entity.Plugin{ID: "00000000-0000-4000-8002-000000000001", Name: "request-termination", Enabled: true,
		Config: json.RawMessage(`{"status_code":418}`), Protocols: []string{"http"}}
	if err := st.Apply(ctx, []store.Op{op(t, store.OpInsert, p)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Wait(ctx, f.s.Invalidate([]entity.CacheKey{entity.PluginsVersion}, false)); err != nil {
		t.Fatal(err)
	}
	if n := f.out.p.Load().Len(); n != 1 {
		t.Errorf("plugins_iterator:version: %d plugins in the set, want the one stored without an event", n)
	}
}
