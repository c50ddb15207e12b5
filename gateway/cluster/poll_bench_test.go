package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/store"
)

// BenchmarkEmptyPoll measures a poll that brings nothing new, on SQLite,
// after node A wrote 200 events that node B has already applied: the
// steady state of an idle cluster right after a burst of changes. Grace is
// a minute so that the burst stays inside it for the whole run (with the
// default 2s, a burst is re-read for 2s after it).
func BenchmarkEmptyPoll(b *testing.B) {
	stA, stB := openShared(b)
	ctx := context.Background()
	c, rec := newNode(b, stB, "node-b", Options{Frequency: time.Hour, Grace: time.Minute})
	evs := make([]store.Event, 200)
	for i := range evs {
		evs[i] = store.Event{ID: uuid.NewString(), NodeID: "node-a", Channel: Channel, Data: "routes:" + uuid.NewString()}
	}
	if err := stA.Apply(ctx, nil, evs); err != nil {
		b.Fatal(err)
	}
	if err := c.Poll(ctx); err != nil {
		b.Fatal(err)
	}
	if got := len(rec.got()); got != len(evs) {
		b.Fatalf("node B applied %d events, want %d", got, len(evs))
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if rec.calls != 1 {
		b.Fatalf("node B made %d Invalidate calls, want the first poll's only", rec.calls)
	}
}
