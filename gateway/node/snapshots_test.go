package node

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
)

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

func routeRecord(t *testing.T, id string, paths ...string) store.Record {
	t.Helper()
	r := &entity.Route{ID: id, Protocols: []string{"http"}, Paths: paths}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return store.NewRecord(r, data)
}

func decodeRoute(t *testing.T, b *memoBuild, rec store.Record) *entity.Route {
	t.Helper()
	e, err := b.decode(entity.KindRoute, rec)
	if err != nil {
		t.Fatal(err)
	}
	return e.(*entity.Route)
}

// TestDecodeMemo checks that a rebuild reuses the previous build's entity
// only for byte-identical JSON, decodes changed records afresh, forgets
// deleted ones, and that a failed build leaves the reference unchanged.
func TestDecodeMemo(t *testing.T) {
	var m decodeMemo
	b1 := m.begin()
	a1 := decodeRoute(t, b1, routeRecord(t, "a", "/a"))
	c1 := decodeRoute(t, b1, routeRecord(t, "c", "/c"))
	m.commit(b1)

	b2 := m.begin()
	if a2 := decodeRoute(t, b2, routeRecord(t, "a", "/a")); a2 != a1 {
		t.Error("unchanged record decoded again, want the previous build's entity")
	}
	changed := decodeRoute(t, b2, routeRecord(t, "c", "/c2"))
	if changed == c1 || len(changed.Paths) != 1 || changed.Paths[0] != "/c2" {
		t.Errorf("changed record: %+v (same entity as before: %v), want a fresh decode with path /c2", changed, changed == c1)
	}
	m.commit(b2)

	// A build that fails midway (no commit) does not change what the next
	// build compares with; "c" was not read in it, yet stays known.
	b3 := m.begin()
	decodeRoute(t, b3, routeRecord(t, "a", "/a"))
	b4 := m.begin()
	if c4 := decodeRoute(t, b4, routeRecord(t, "c", "/c2")); c4 != changed {
		t.Error("after a failed build, the last successful build's entity was not reused")
	}
	m.commit(b4)

	// "a" was not read in the last build (deleted): it is forgotten.
	if _, ok := m.last[entity.CacheKey{Kind: entity.KindRoute, ID: "a"}]; ok {
		t.Error("a record the last build did not read is still remembered")
	}
	// The same JSON under another kind is not confused with a route.
	b5 := m.begin()
	if e, _ := b5.decode(entity.KindService, routeRecord(t, "c", "/c2")); e != nil {
		if _, isRoute := e.(*entity.Route); isRoute {
			t.Error("a service decode returned the memoized route")
		}
	}
}
