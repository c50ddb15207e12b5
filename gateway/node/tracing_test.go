package node

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/gateway/config"
)

// TestLookupSpans: a node wires its cache to the instrumented store with
// the tracer provider and db.system it is given: in a traced request, each
// credential lookup is a sluice.cache.get span carrying the cache result,
// and a miss's datastore query is its child span.
func TestLookupSpans(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	backend, err := freecache.New(freecache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	n, err := New(Options{Config: config.Default(), Store: st, Backend: backend, TracerProvider: tp, DBSystem: "sqlite"})
	if err != nil {
		t.Fatal(err)
	}
	creds := n.Cache()

	reqCtx, req := tp.Tracer("test").Start(ctx, "request")
	for range 2 { // a miss, then a cached miss
		if c, err := creds.Credential(reqCtx, "no-such-key"); c != nil || err != nil {
			t.Fatalf("Credential = %v, %v; want nil, nil", c, err)
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
