package postgres

import (
	"testing"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
)

// BenchmarkGet reads one service by primary key: one round trip.
func BenchmarkGet(b *testing.B) {
	s := openMigrated(b, freshConfig(b))
	svc := storetest.Service("bench-get")
	if err := s.Apply(testCtx(b), []store.Op{{Type: store.OpInsert, Record: svc}}, nil); err != nil {
		b.Fatal(err)
	}
	ctx := testCtx(b)
	for b.Loop() {
		if _, err := s.Get(ctx, entity.KindService, svc.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel reads one service from GOMAXPROCS goroutines.
func BenchmarkGetParallel(b *testing.B) {
	s := openMigrated(b, freshConfig(b))
	svc := storetest.Service("bench-get")
	if err := s.Apply(testCtx(b), []store.Op{{Type: store.OpInsert, Record: svc}}, nil); err != nil {
		b.Fatal(err)
	}
	ctx := testCtx(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, entity.KindService, svc.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkApply inserts one named service with one invalidation event:
// the shape of an Admin API create.
func BenchmarkApply(b *testing.B) {
	s := openMigrated(b, freshConfig(b))
	ctx := testCtx(b)
	data := storetest.Service("template").Data
	node := uuid.NewString()
	for b.Loop() {
		id := uuid.NewString()
		rec := store.Record{Kind: entity.KindService, ID: id, Unique: map[string]string{"name": id}, Data: data}
		ev := store.Event{ID: uuid.NewString(), NodeID: node, Channel: "invalidations", Data: "services:" + id}
		if err := s.Apply(ctx, []store.Op{{Type: store.OpInsert, Record: rec}}, []store.Event{ev}); err != nil {
			b.Fatal(err)
		}
	}
}
