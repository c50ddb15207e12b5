package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// clockTolerance bounds how far an event's At may lie outside the Now
// readings taken around its Apply (datastores truncate to milliseconds).
const clockTolerance = time.Second

func testEvents(t *testing.T, s store.Store, _ options) {
	before := now(t, s)
	svc := Service("ev-svc")
	e1, e2 := event("services:"+svc.ID), event("routes:x")
	e2.Delay = 5 * time.Second
	e2.TraceParent = ""
	if err := s.Apply(ctx(t), []store.Op{insert(svc)}, []store.Event{e1, e2}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	after := now(t, s)
	got, polled := events(t, s, before.Add(-clockTolerance))
	t.Run("fields round-trip", func(t *testing.T) {
		if len(got) != 2 {
			t.Fatalf("Events returned %d events, want 2: %+v", len(got), got)
		}
		for _, want := range []store.Event{e1, e2} {
			g := find(got, want.ID)
			if g == nil {
				t.Fatalf("event %s missing from %+v", want.ID, got)
			}
			if g.NodeID != want.NodeID || g.Channel != want.Channel || g.Data != want.Data || g.TraceParent != want.TraceParent {
				t.Errorf("event = %+v, want %+v", *g, want)
			}
		}
	})
	t.Run("At is the datastore clock", func(t *testing.T) {
		for _, g := range got {
			if g.At.Before(before.Add(-clockTolerance)) || g.At.After(after.Add(clockTolerance)) {
				t.Errorf("event At %v outside [%v, %v]", g.At, before, after)
			}
			if g.At.After(polled) {
				t.Errorf("event At %v after the returned now %v", g.At, polled)
			}
		}
	})
	t.Run("NotBefore is At plus Delay", func(t *testing.T) {
		if g := find(got, e1.ID); g != nil && !g.NotBefore.IsZero() && !g.NotBefore.Equal(g.At) {
			t.Errorf("event without delay: NotBefore %v, want zero or At %v", g.NotBefore, g.At)
		}
		if g := find(got, e2.ID); g != nil && !g.NotBefore.Equal(g.At.Add(e2.Delay)) {
			t.Errorf("event with delay %v: NotBefore %v, want %v", e2.Delay, g.NotBefore, g.At.Add(e2.Delay))
		}
	})
	t.Run("nothing new after now", func(t *testing.T) {
		if again, _ := events(t, s, polled); len(again) != 0 {
			t.Errorf("Events(now) = %+v, want none", again)
		}
	})
	t.Run("events without ops", func(t *testing.T) {
		// An event stamped in the returned now's own instant is excluded
		// by Events(now) (pollers catch it with their grace window, or a cursor): wait
		// for the datastore's clock to move past it (SQLite counts
		// milliseconds).
		for deadline := time.Now().Add(time.Second); !now(t, s).After(polled) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		e := event("consumers:y")
		if err := s.Apply(ctx(t), nil, []store.Event{e}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if again, _ := events(t, s, polled); len(again) != 1 || again[0].ID != e.ID {
			t.Errorf("Events(previous now) = %+v, want only %s", again, e.ID)
		}
	})
	t.Run("ordered by At, since excluded", func(t *testing.T) {
		start := now(t, s)
		var ids []string
		for range 4 {
			time.Sleep(3 * time.Millisecond) // distinct millisecond At values
			e := event("services:z")
			ids = append(ids, e.ID)
			if err := s.Apply(ctx(t), nil, []store.Event{e}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
		}
		all, _ := events(t, s, start.Add(-clockTolerance))
		var gotIDs []string
		for i, e := range all {
			if i > 0 && e.At.Before(all[i-1].At) {
				t.Fatalf("events not ordered by At: %v after %v", e.At, all[i-1].At)
			}
			if slices.Contains(ids, e.ID) {
				gotIDs = append(gotIDs, e.ID)
			}
		}
		if !slices.Equal(gotIDs, ids) {
			t.Fatalf("Events order = %v, want %v", gotIDs, ids)
		}
		first := *find(all, ids[0])
		if rest, _ := events(t, s, first.At); find(rest, first.ID) != nil || find(rest, ids[3]) == nil {
			t.Errorf("Events(At of %s) = %+v, want it excluded and later events included", first.ID, rest)
		}
		if rest, _ := events(t, s, first.At.Add(-time.Millisecond)); find(rest, first.ID) == nil {
			t.Errorf("Events(At-1ms of %s) = %+v, want it included", first.ID, rest)
		}
	})
}

func testPurgeEvents(t *testing.T, s store.Store, _ options) {
	start := now(t, s)
	for range 5 {
		if err := s.Apply(ctx(t), nil, []store.Event{event("services:old")}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	_, polled := events(t, s, start.Add(-clockTolerance))
	cut := polled.Add(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	late := event("services:new")
	if err := s.Apply(ctx(t), nil, []store.Event{late}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, want := range []int{2, 2, 1, 0} {
		n, err := s.PurgeEvents(ctx(t), cut, 2)
		if err != nil || n != want {
			t.Fatalf("PurgeEvents call %d = %d, %v; want %d, nil", i+1, n, err, want)
		}
	}
	left, _ := events(t, s, start.Add(-clockTolerance))
	if len(left) != 1 || left[0].ID != late.ID {
		t.Fatalf("events left after purge = %+v, want only %s", left, late.ID)
	}
}

func testAtomicity(t *testing.T, s store.Store, _ options) {
	taken := Service("atom-taken")
	referenced := Service("atom-ref")
	rt := Route("atom-rt", referenced.ID)
	lone := Service("atom-lone")
	mustApply(t, s, insert(taken), insert(referenced), insert(rt), insert(lone))
	fresh := Service("atom-fresh")
	tests := []struct {
		name   string
		ops    []store.Op
		stored []store.Record
		gone   []store.Record
	}{
		{"failing insert", []store.Op{insert(Service("atom-taken"))}, []store.Record{taken}, nil},
		{"failing delete", []store.Op{del(referenced)}, []store.Record{referenced, rt}, nil},
		{"insert before a unique violation",
			[]store.Op{insert(fresh), insert(Service("atom-taken"))}, nil, []store.Record{fresh}},
		{"insert before a foreign key violation",
			[]store.Op{insert(fresh), insert(Route("atom-orphan", Service("").ID))}, nil, []store.Record{fresh}},
		{"delete before a unique violation",
			[]store.Op{del(lone), insert(Service("atom-taken"))}, []store.Record{lone}, nil},
		{"update before a referenced delete",
			[]store.Op{update(renamed(lone, "atom-renamed")), del(referenced)}, []store.Record{lone, referenced}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			since := now(t, s).Add(-clockTolerance)
			e := event("services:atom")
			if err := s.Apply(ctx(t), tt.ops, []store.Event{e}); err == nil {
				t.Fatal("Apply succeeded, want an error")
			}
			for _, r := range tt.stored {
				wantStored(t, s, r)
			}
			for _, r := range tt.gone {
				wantGone(t, s, r)
			}
			if got, _ := events(t, s, since); find(got, e.ID) != nil {
				t.Errorf("event of a failed Apply was written: %+v", got)
			}
		})
	}
	t.Run("unique values of rolled back ops stay free", func(t *testing.T) {
		checkUnique(t, s, entity.KindService, "atom-fresh", nil)
		checkUnique(t, s, entity.KindService, "atom-renamed", nil)
		checkUnique(t, s, entity.KindService, "atom-lone", &lone)
	})
}

// event returns an invalidation event with random ids and a traceparent.
func event(data string) store.Event {
	return store.Event{ID: uuid.NewString(), NodeID: uuid.NewString(), Channel: "invalidations", Data: data,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
}

func now(t *testing.T, s store.Store) time.Time {
	t.Helper()
	n, err := s.Now(ctx(t))
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	return n
}

func events(t *testing.T, s store.Store, since time.Time) ([]store.Event, time.Time) {
	t.Helper()
	got, n, err := s.Events(ctx(t), since)
	if err != nil {
		t.Fatalf("Events(%v): %v", since, err)
	}
	return got, n
}

func find(evs []store.Event, id string) *store.Event {
	for i := range evs {
		if evs[i].ID == id {
			return &evs[i]
		}
	}
	return nil
}
