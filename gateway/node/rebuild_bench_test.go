package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// BenchmarkBuildRouter1k measures one route-table rebuild as a node does
// it after a route event: read 1,000 routes and their service from an
// SQLite datastore, decode them and compile the table. On a node with one
// P, requests wait for it (the storm phase of `sluice bench`).
func BenchmarkBuildRouter1k(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	svc := &entity.Service{ID: "00000000-0000-4000-8000-000000000001", Host: "upstream", Port: 80, Protocol: "http"}
	ops := []store.Op{insert(b, svc)}
	for i := range 1000 {
		r := &entity.Route{ID: fmt.Sprintf("00000000-0000-4000-8001-%012d", i), Protocols: []string{"http", "https"},
			Paths: []string{fmt.Sprintf("/r%d", i)}, StripPath: true, PathHandling: "v0", RequestBuffering: true,
			ResponseBuffering: true, HTTPSRedirectStatusCode: 426, Service: &entity.Ref{ID: svc.ID}}
		ops = append(ops, insert(b, r))
	}
	if err := st.Apply(ctx, ops, nil); err != nil {
		b.Fatal(err)
	}
	backend, err := freecache.New(freecache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	n, err := New(Options{Config: config.Default(), Store: st, Backend: backend})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer procstat.ReportCPU(b, procstat.Self())
	for range b.N {
		if err := n.buildRouter(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(n.metrics.routes); got != 1000 {
		b.Fatalf("route table has %v routes, want 1000", got)
	}
}

func insert(b *testing.B, e entity.Entity) store.Op {
	data, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	return store.Op{Type: store.OpInsert, Record: store.NewRecord(e, data)}
}
