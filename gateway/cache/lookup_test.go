package cache

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
	"github.com/sluice-gw/sluice/gateway/store/storeobs"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
)

// storeCache returns a cache over a freecache backend whose loader reads a
// fresh SQLite store through storeobs, as a node wires it, and the id of
// the consumer that owns key-auth credential "k1".
func storeCache(t *testing.T, tp *sdktrace.TracerProvider) (*Cache, string) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Up(ctx); err != nil {
		t.Fatal(err)
	}
	consumer := storetest.Consumer("alice", "")
	ops := []store.Op{{Type: store.OpInsert, Record: consumer}, {Type: store.OpInsert, Record: storetest.KeyAuth("k1", consumer.ID)},
		{Type: store.OpInsert, Record: storetest.BasicAuth("alice-b", consumer.ID)},
		{Type: store.OpInsert, Record: storetest.JWT("alice-iss", consumer.ID)}}
	if err := st.Apply(ctx, ops, nil); err != nil {
		t.Fatal(err)
	}
	backend, err := freecache.New(freecache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	oopts, copts := storeobs.Options{System: "sqlite"}, Options{Backend: "freecache"}
	if tp != nil { // a nil *TracerProvider is not a nil trace.TracerProvider
		oopts.TracerProvider, copts.TracerProvider = tp, tp
	}
	return New(backend, StoreLoader(storeobs.New(st, oopts)), copts), consumer.ID
}

// TestTypedLookups: Credential finds a credential by its key, BasicAuth by
// its username, JWTSecret by its key and Consumer a consumer by its id,
// through the store; unknown ones are nil without
// error; the second lookup is a hit.
func TestTypedLookups(t *testing.T) {
	c, consumerID := storeCache(t, nil)
	ctx := t.Context()
	for range 2 {
		cred, err := c.Credential(ctx, "k1")
		if err != nil || cred == nil || cred.Key != "k1" || cred.Consumer == nil || cred.Consumer.ID != consumerID {
			t.Fatalf("Credential(k1) = %+v, %v", cred, err)
		}
		cons, err := c.Consumer(ctx, consumerID)
		if err != nil || cons == nil || cons.ID != consumerID {
			t.Fatalf("Consumer = %+v, %v", cons, err)
		}
		if cred, err := c.Credential(ctx, "nope"); cred != nil || err != nil {
			t.Fatalf("Credential(nope) = %v, %v; want nil, nil", cred, err)
		}
		if cons, err := c.Consumer(ctx, "no-such-id"); cons != nil || err != nil {
			t.Fatalf("Consumer(no-such-id) = %v, %v; want nil, nil", cons, err)
		}
		// basic-auth credentials by username, jwt secrets by key.
		if b, err := c.BasicAuth(ctx, "alice-b"); err != nil || b == nil || b.Username != "alice-b" || b.Consumer.ID != consumerID {
			t.Fatalf("BasicAuth(alice-b) = %+v, %v", b, err)
		}
		if b, err := c.BasicAuth(ctx, "alice"); b != nil || err != nil {
			t.Fatalf("BasicAuth(alice) = %v, %v; want nil, nil (a consumer's username is not a credential's)", b, err)
		}
		if j, err := c.JWTSecret(ctx, "alice-iss"); err != nil || j == nil || j.Key != "alice-iss" || j.Consumer.ID != consumerID {
			t.Fatalf("JWTSecret(alice-iss) = %+v, %v", j, err)
		}
		if j, err := c.JWTSecret(ctx, "k1"); j != nil || err != nil {
			t.Fatalf("JWTSecret(k1) = %v, %v; want nil, nil (a key-auth key is not a jwt key)", j, err)
		}
	}
	for _, k := range c.Stats().Kinds {
		switch k.Kind {
		case entity.KindKeyAuth, entity.KindConsumer, entity.KindBasicAuth, entity.KindJWT:
			if k.Misses != 2 || k.Hits != 1 || k.NegativeHits != 1 {
				t.Errorf("%s: misses %d hits %d negative hits %d, want 2, 1, 1", k.Kind, k.Misses, k.Hits, k.NegativeHits)
			}
		}
	}
}

// TestLookupSpans: in a traced request, each credential lookup is a
// sluice.cache.get span carrying the cache result, and a miss's datastore
// query is its child span; untraced lookups make no span.
func TestLookupSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	c, _ := storeCache(t, tp)

	if _, err := c.Credential(context.Background(), "untraced"); err != nil {
		t.Fatal(err)
	}
	reqCtx, req := tp.Tracer("test").Start(t.Context(), "request")
	for range 2 { // a miss, then a cached miss
		if cred, err := c.Credential(reqCtx, "no-such-key"); cred != nil || err != nil {
			t.Fatalf("Credential = %v, %v; want nil, nil", cred, err)
		}
	}
	req.End()

	var gets []sdktrace.ReadOnlySpan
	var query sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		switch s.Name() {
		case "sluice.cache.get":
			gets = append(gets, s)
		case "sluice.datastore.query":
			query = s
		}
	}
	if len(gets) != 2 {
		t.Fatalf("got %d sluice.cache.get spans, want 2", len(gets))
	}
	for i, want := range []string{"miss", "negative_hit"} {
		if got := attrOf(gets[i], "sluice.cache.result"); got != want {
			t.Errorf("lookup %d: sluice.cache.result = %q, want %q", i, got, want)
		}
		if got := attrOf(gets[i], "sluice.entity"); got != string(entity.KindKeyAuth) {
			t.Errorf("lookup %d: sluice.entity = %q", i, got)
		}
		if gets[i].Parent().SpanID() != req.SpanContext().SpanID() {
			t.Errorf("lookup %d is not a child of the request span", i)
		}
	}
	if query == nil {
		t.Fatal("no sluice.datastore.query span for the miss")
	}
	if query.Parent().SpanID() != gets[0].SpanContext().SpanID() {
		t.Error("the datastore query is not a child of the missing lookup")
	}
	if got := attrOf(query, "db.system"); got != "sqlite" {
		t.Errorf("db.system = %q, want sqlite", got)
	}
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsString()
		}
	}
	return ""
}

// TestCollector: the collector exports the cache's counters per entity
// kind and backend, and the entry gauges, at scrape time.
func TestCollector(t *testing.T) {
	c, _ := storeCache(t, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(c))
	ctx := t.Context()
	for range 3 {
		if _, err := c.Credential(ctx, "k1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Credential(ctx, "nope"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Credential(ctx, "nope"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want float64
	}{
		{`sluice_cache_hits_total{backend="freecache",entity="keyauth_credentials"}`, 2},
		{`sluice_cache_misses_total{backend="freecache",entity="keyauth_credentials"}`, 2},
		{`sluice_cache_negative_hits_total{backend="freecache",entity="keyauth_credentials"}`, 1},
		{`sluice_cache_stale_hits_total{backend="freecache",entity="keyauth_credentials"}`, 0},
		{`sluice_cache_misses_total{backend="freecache",entity="services"}`, 0},
		{`sluice_cache_entries{backend="freecache",kind="positive"}`, 1},
		{`sluice_cache_entries{backend="freecache",kind="negative"}`, 1},
	} {
		if got := gatherValue(t, reg, tc.name); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "sluice_cache_bytes", "sluice_cache_evictions_total"); err != nil || n != 2 {
		t.Errorf("backend series = %d, %v; want sluice_cache_bytes and sluice_cache_evictions_total", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "sluice_cache_hits_total"); err != nil || n != len(entity.Kinds) {
		t.Errorf("sluice_cache_hits_total has %d series (%v), want one per entity kind (%d): no synthetic keys", n, err, len(entity.Kinds))
	}
}

// gatherValue returns the value of the series written as
// name{label="value",...} with labels sorted, or -1 when absent.
func gatherValue(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := mf.GetName() + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					s += ","
				}
				s += l.GetName() + `="` + l.GetValue() + `"`
			}
			s += "}"
			if s != series {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
