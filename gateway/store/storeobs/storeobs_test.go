package storeobs

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
)

// openSQLite returns a migrated SQLite store holding one service and one
// consumer with a key-auth credential "k1".
func openSQLite(t *testing.T) (*sqlite.Store, store.Record) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "obs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Up(ctx); err != nil {
		t.Fatal(err)
	}
	svc, consumer := storetest.Service("orders"), storetest.Consumer("alice", "")
	ops := []store.Op{{Type: store.OpInsert, Record: svc}, {Type: store.OpInsert, Record: consumer},
		{Type: store.OpInsert, Record: storetest.KeyAuth("k1", consumer.ID)}}
	if err := st.Apply(ctx, ops, nil); err != nil {
		t.Fatal(err)
	}
	return st, svc
}

// queries returns sluice_datastore_query_duration_seconds' sample count
// by operation.
func queries(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_datastore_query_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

// TestLookupsCountedAndTraced: every Get and GetByUnique, found or not, is
// one sample of its entity kind and, in a traced request, one
// sluice.datastore.query span child of the caller's, with db.system and
// sluice.entity; not-found is not a span error. Other methods are not
// counted, and an untraced lookup makes no span.
func TestLookupsCountedAndTraced(t *testing.T) {
	st, svc := openSQLite(t)
	reg := prometheus.NewRegistry()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	s := New(st, Options{Registerer: reg, TracerProvider: tp, System: "sqlite"})

	ctx, req := tp.Tracer("test").Start(t.Context(), "request")
	if rec, err := s.Get(ctx, entity.KindService, svc.ID); err != nil || rec.ID != svc.ID {
		t.Fatalf("Get = %v, %v", rec, err)
	}
	if rec, err := s.GetByUnique(ctx, entity.KindKeyAuth, "key", "k1"); err != nil || rec.Kind != entity.KindKeyAuth {
		t.Fatalf("GetByUnique = %v, %v", rec, err)
	}
	if _, err := s.GetByUnique(ctx, entity.KindKeyAuth, "key", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetByUnique(nope) = %v, want ErrNotFound", err)
	}
	req.End()
	if _, err := s.Get(t.Context(), entity.KindService, "untraced"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(untraced) = %v, want ErrNotFound", err)
	}
	if _, err := s.List(t.Context(), store.ListQuery{Kind: entity.KindService, Size: 10}); err != nil {
		t.Fatal(err)
	}

	want := map[string]uint64{"services": 2, "keyauth_credentials": 2}
	if got := queries(t, reg); len(got) != len(want) || got["services"] != 2 || got["keyauth_credentials"] != 2 {
		t.Errorf("query samples = %v, want %v (List not counted)", got, want)
	}
	if got := testutil.ToFloat64(s.metrics.reachable); got != 1 || !s.Reachable() {
		t.Errorf("sluice_datastore_reachable = %v, Reachable = %v after answers, want 1, true", got, s.Reachable())
	}

	var spans []sdktrace.ReadOnlySpan
	for _, sp := range sr.Ended() {
		if sp.Name() == "sluice.datastore.query" {
			spans = append(spans, sp)
		}
	}
	if len(spans) != 3 {
		t.Fatalf("%d sluice.datastore.query spans, want 3 (the traced lookups only)", len(spans))
	}
	for i, wantKind := range []string{"services", "keyauth_credentials", "keyauth_credentials"} {
		sp := spans[i]
		if sp.Parent().SpanID() != req.SpanContext().SpanID() {
			t.Errorf("span %d is not a child of the request", i)
		}
		attrs := map[string]string{}
		for _, kv := range sp.Attributes() {
			attrs[string(kv.Key)] = kv.Value.AsString()
		}
		if attrs["db.system"] != "sqlite" || attrs["sluice.entity"] != wantKind {
			t.Errorf("span %d attributes = %v, want db.system=sqlite sluice.entity=%s", i, attrs, wantKind)
		}
		if sp.Status().Code != codes.Unset {
			t.Errorf("span %d status = %v, want unset (not found is an answer)", i, sp.Status())
		}
	}
}

// TestFailedLookups: a lookup that fails is counted and marks its span an
// error; an error that does not say the datastore is unavailable leaves
// sluice_datastore_reachable as it was, a failed Check sets it to 0.
// Timeout bounds each lookup.
func TestFailedLookups(t *testing.T) {
	st, svc := openSQLite(t)
	reg := prometheus.NewRegistry()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))

	bounded := New(st, Options{TracerProvider: tp, System: "sqlite", Timeout: time.Nanosecond})
	ctx, req := tp.Tracer("test").Start(t.Context(), "request")
	if _, err := bounded.Get(ctx, entity.KindService, svc.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get with a 1ns timeout = %v, want context.DeadlineExceeded", err)
	}
	req.End()
	if sp := sr.Ended()[0]; sp.Name() != "sluice.datastore.query" || sp.Status().Code != codes.Error {
		t.Errorf("span %q status = %v, want an error", sp.Name(), sp.Status())
	}

	s := New(st, Options{Registerer: reg, System: "sqlite"})
	if err := s.Check(t.Context()); err != nil || !s.Reachable() {
		t.Fatalf("Check = %v, Reachable = %v on an open store", err, s.Reachable())
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), entity.KindService, svc.ID); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get on a closed store = %v, want an error", err)
	}
	if got := queries(t, reg)["services"]; got != 1 {
		t.Errorf("failed lookup samples = %d, want 1", got)
	}
	if !s.Reachable() {
		t.Error("a failure that is not store.ErrUnavailable changed Reachable")
	}
	if err := s.Check(t.Context()); err == nil {
		t.Fatal("Check on a closed store succeeded")
	}
	if got := testutil.ToFloat64(s.metrics.reachable); got != 0 || s.Reachable() {
		t.Errorf("after a failed Check: gauge %v, Reachable %v; want 0, false", got, s.Reachable())
	}
	if n := len(queries(t, reg)); n != 1 {
		t.Errorf("Check was counted as a query (%d operations)", n)
	}
}
