package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store/postgres"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// slowApplier takes its time with every call, as a node waiting for its
// snapshots' rebuild does, and records the size of each batch.
type slowApplier struct {
	mu      sync.Mutex
	batches []int
	keys    int
}

func (a *slowApplier) Invalidate(_ context.Context, keys []entity.CacheKey) {
	time.Sleep(50 * time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches = append(a.batches, len(keys))
	a.keys += len(keys)
}

func (a *slowApplier) InvalidateAll(context.Context) {}

func (a *slowApplier) state() (batches []int, keys int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.batches...), a.keys
}

// TestPushAppliesBurstsInBatches: on PostgreSQL with push on, a burst of
// changes pushed while the node is still applying an earlier one is
// applied together, not one rebuild per change (with one call per event,
// 20 events took 20 calls of 50 ms).
func TestPushAppliesBurstsInBatches(t *testing.T) {
	pg := testenv.Postgres(t)
	cfg := postgres.Config{Host: pg.Host, Port: pg.Port, User: pg.User, Password: pg.Password, Database: pg.Database,
		SSL: pg.SSL, Schema: pg.FreshSchema(t, "sluice_push_")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if err := st.Up(ctx); err != nil {
			t.Fatal(err)
		}
		return st
	}
	stA, stB := open(), open()
	a, _ := newNode(t, stA, "node-a", Options{Frequency: time.Hour})
	app := new(slowApplier)
	b, err := New(stB, app, Options{NodeID: "node-b", Frequency: time.Hour, Push: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	time.Sleep(200 * time.Millisecond) // B's LISTEN is up

	const n = 20
	want := 0
	for i := range n {
		want += len(write(t, ctx, a, stA, fmt.Sprintf("%012d", 100+i)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, keys := app.state(); keys >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	batches, keys := app.state()
	if keys != want {
		t.Fatalf("node B applied %d keys of %d pushed within 10 s (batches %v)", keys, want, batches)
	}
	if len(batches) > n/2 {
		t.Errorf("node B applied %d pushed changes in %d calls (%v), want bursts batched (at most %d)", n, len(batches), batches, n/2)
	}
	t.Logf("%d changes applied in %d batches: %v", n, len(batches), batches)
}
