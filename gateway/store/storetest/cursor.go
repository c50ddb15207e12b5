package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/store"
)

// testEventCursor checks a store.EventCursor: a reader that follows the
// cursor while writers commit concurrently sees every event exactly once,
// in commit order, with no grace window; and a number is not handed out
// again once the events holding the largest ones are purged.
func testEventCursor(t *testing.T, s store.Store, o options) {
	cur, ok := s.(store.EventCursor)
	if !ok {
		t.Skip("this datastore has no event cursor; pollers keep a grace window")
	}
	after := func(seq int64) ([]store.Event, int64) {
		t.Helper()
		evs, last, _, err := cur.EventsAfter(ctx(t), seq)
		if err != nil {
			t.Fatalf("EventsAfter(%d): %v", seq, err)
		}
		return evs, last
	}
	if err := s.Apply(ctx(t), nil, []store.Event{event("services:before")}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	evs, start := after(-1)
	if len(evs) != 0 || start <= 0 {
		t.Fatalf("EventsAfter(-1) = %d events, %d; want none and the last event's number", len(evs), start)
	}

	const perWriter = 25
	var wg sync.WaitGroup
	written := make(chan string, o.concurrency*perWriter)
	for range o.concurrency {
		wg.Go(func() {
			for range perWriter {
				e := event("services:cursor")
				if err := s.Apply(ctx(t), nil, []store.Event{e}); err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				written <- e.ID
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := make(map[string]int)
	seq, finished := start, false
	for !finished {
		select {
		case <-done:
			finished = true // one more read after the last commit
		case <-time.After(time.Millisecond):
		}
		var evs []store.Event
		evs, seq = after(seq)
		for _, e := range evs {
			seen[e.ID]++
		}
	}
	close(written)
	for id := range written {
		if seen[id] != 1 {
			t.Errorf("event %s read %d times by the cursor, want once", id, seen[id])
		}
	}
	if len(seen) != o.concurrency*perWriter {
		t.Errorf("the cursor read %d events, want the %d written", len(seen), o.concurrency*perWriter)
	}

	if evs, last := after(seq); len(evs) != 0 || last != seq {
		t.Errorf("EventsAfter(last) = %d events, %d; want none and %d", len(evs), last, seq)
	}
	for {
		n, err := s.PurgeEvents(ctx(t), now(t, s).Add(time.Hour), 100)
		if err != nil {
			t.Fatalf("PurgeEvents: %v", err)
		}
		if n == 0 {
			break
		}
	}
	late := event("services:late")
	if err := s.Apply(ctx(t), nil, []store.Event{late}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if evs, _ := after(seq); len(evs) != 1 || evs[0].ID != late.ID {
		t.Errorf("after purging every event, EventsAfter(%d) = %+v; want the one written since", seq, evs)
	}
}
