package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
)

func TestListen(t *testing.T) {
	c := freshConfig(t)
	writer := openMigrated(t, c)
	listener := open(t, c)
	got, done, cancel := listen(t, listener)
	warmUp(t, writer, got)

	t.Run("delivered within a second with the stored fields", func(t *testing.T) {
		svc := storetest.Service("listen-svc")
		e := testEvent("services:" + svc.ID)
		e.Delay = 3 * time.Second
		if err := writer.Apply(testCtx(t), []store.Op{{Type: store.OpInsert, Record: svc}}, []store.Event{e}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		pushed := waitFor(t, got, e.ID, time.Second)
		polled, _, err := writer.Events(testCtx(t), time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		var want store.Event
		for _, p := range polled {
			if p.ID == e.ID {
				want = p
			}
		}
		if !pushed.At.Equal(want.At) || !pushed.NotBefore.Equal(want.NotBefore) || pushed.Delay != e.Delay ||
			pushed.NodeID != e.NodeID || pushed.Channel != e.Channel || pushed.Data != e.Data || pushed.TraceParent != e.TraceParent {
			t.Errorf("pushed event = %+v, want the polled %+v", pushed, want)
		}
	})
	t.Run("rolled back and other schemas' events are not delivered", func(t *testing.T) {
		svc := storetest.Service("listen-dup")
		ins := []store.Op{{Type: store.OpInsert, Record: svc}}
		if err := writer.Apply(testCtx(t), ins, nil); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		failed := testEvent("services:failed")
		if err := writer.Apply(testCtx(t), ins, []store.Event{failed}); err == nil {
			t.Fatal("duplicate insert succeeded")
		}
		foreign := testEvent("services:other-schema")
		if err := openMigrated(t, freshConfig(t)).Apply(testCtx(t), nil, []store.Event{foreign}); err != nil {
			t.Fatalf("Apply on another schema: %v", err)
		}
		marker := testEvent("services:marker")
		if err := writer.Apply(testCtx(t), nil, []store.Event{marker}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		// Notifications arrive in commit order: anything sent before the
		// marker has arrived by the time it does.
		for {
			select {
			case e := <-got:
				if e.ID == failed.ID || e.ID == foreign.ID {
					t.Fatalf("unexpected event delivered: %+v", e)
				}
				if e.ID == marker.ID {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatal("marker event not delivered within 5s")
			}
		}
	})
	t.Run("returns nil when ctx is done", func(t *testing.T) {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Listen after cancel = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Listen did not return within 5s of cancel")
		}
	})
}

func TestListenConnectionKilled(t *testing.T) {
	c := freshConfig(t)
	writer := openMigrated(t, c)
	got, done, _ := listen(t, open(t, c))
	warmUp(t, writer, got)

	conn, err := pgx.Connect(testCtx(t), dsn(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var killed int
	err = conn.QueryRow(testCtx(t), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query = $1`, "LISTEN "+pgx.Identifier{c.channel()}.Sanitize()).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the listening backend: killed %d, err %v; want 1", killed, err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Listen after pg_terminate_backend = %v, want an error wrapping ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return within 5s of its connection being killed")
	}
}

func TestListenUnreachable(t *testing.T) {
	c := serverConfig(t).withDefaults()
	c.Port = 1
	pc, err := c.poolConfig()
	if err != nil {
		t.Fatalf("poolConfig: %v", err)
	}
	pool, err := pgxpool.NewWithConfig(testCtx(t), pc) // connects lazily
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	s := &Store{cfg: c, pool: pool}
	defer s.Close()
	err = s.Listen(testCtx(t), func(store.Event) { t.Error("event delivered by an unreachable server") })
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "pg_port=1") {
		t.Errorf("Listen on a closed port = %v, want ErrUnavailable naming pg_port=1", err)
	}
}

// listen runs s.Listen until the test ends, sending events to got. done
// receives Listen's result; cancel stops it.
func listen(t *testing.T, s *Store) (got chan store.Event, done chan error, cancel context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got, done = make(chan store.Event, 1000), make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- s.Listen(ctx, func(e store.Event) { got <- e })
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	return got, done, cancel
}

// warmUp applies events on s until one arrives on got, proving that the
// listener's LISTEN is in place.
func warmUp(t *testing.T, s *Store, got chan store.Event) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		e := testEvent("warm-up")
		if err := s.Apply(testCtx(t), nil, []store.Event{e}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		select {
		case <-got:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("no event delivered within 10s of Listen starting")
}

// waitFor returns the event with id from got, failing after within.
func waitFor(t *testing.T, got chan store.Event, id string, within time.Duration) store.Event {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case e := <-got:
			if e.ID == id {
				return e
			}
		case <-timeout:
			t.Fatalf("event %s not delivered within %s", id, within)
		}
	}
}

func testEvent(data string) store.Event {
	return store.Event{ID: uuid.NewString(), NodeID: uuid.NewString(), Channel: "invalidations", Data: data,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
}

func TestPurgeEventsSkipsLockedRows(t *testing.T) {
	s := openMigrated(t, freshConfig(t))
	var ids []string
	for range 5 {
		e := testEvent("services:purge")
		ids = append(ids, e.ID)
		if err := s.Apply(testCtx(t), nil, []store.Event{e}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	// Another transaction holds one event's row, as a writer would.
	tx, err := s.pool.Begin(testCtx(t))
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(testCtx(t), `SELECT 1 FROM cluster_events WHERE id = $1 FOR UPDATE`, ids[0]); err != nil {
		t.Fatalf("lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := s.PurgeEvents(ctx, time.Now().Add(time.Hour), 100)
	if err != nil || n != 4 {
		t.Fatalf("PurgeEvents with one row locked = %d, %v; want 4, nil without waiting", n, err)
	}
	left, _, err := s.Events(testCtx(t), time.Now().Add(-time.Hour))
	if err != nil || len(left) != 1 || left[0].ID != ids[0] {
		t.Errorf("events left = %+v, %v; want only the locked %s", left, err, ids[0])
	}
}
