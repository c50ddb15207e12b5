package cassandra

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// testConfig returns the Config of a fresh keyspace on the server named by
// SLUICE_TEST_CASSANDRA, or skips (fails when CI=true) if it is unset.
func testConfig(t testing.TB) Config {
	t.Helper()
	host, p := testenv.HostPort(t, "SLUICE_TEST_CASSANDRA",
		`start a node with bash tools/cassandra/cassandra.sh start && eval "$(bash tools/cassandra/cassandra.sh env)"`)
	ks := "sluice_test_" + uuid.NewString()[:8]
	return Config{ContactPoints: []string{host}, Port: p, Keyspace: ks, Timeout: 20 * time.Second}
}

// migrated opens a store on a fresh keyspace, runs Up and drops the
// keyspace when the test ends.
func migrated(t testing.TB, cfg Config) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Up(ctx); err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Reset(context.Background()); err != nil {
			t.Errorf("Reset: %v", err)
		}
		s.Close()
	})
	return s
}

// truncate empties every table but the migrations' ones.
func (s *Store) truncate(ctx context.Context) error {
	for _, table := range []string{"entities", "uniques", "foreign_refs", "cluster_events", "ratelimiting_metrics"} {
		if err := s.session.Query(`TRUNCATE ` + s.ks + `.` + table).ExecContext(ctx); err != nil {
			return err
		}
	}
	return nil
}

func TestConformance(t *testing.T) {
	cfg := testConfig(t)
	keeper := migrated(t, cfg) // one keyspace for the whole suite: schema changes are slow
	storetest.Run(t, func(t *testing.T) store.Store {
		if err := keeper.truncate(t.Context()); err != nil {
			t.Fatalf("truncate: %v", err)
		}
		s, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, storetest.WithConcurrency(8))
}

func TestMigrator(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Cleanup(func() { _ = s.Reset(context.Background()) })
	t.Run("pending before Up", func(t *testing.T) {
		st, err := s.Status(ctx)
		if err != nil || len(st.Executed) != 0 || len(st.Pending) != len(migrations) {
			t.Fatalf("Status = %+v, %v; want all %d pending", st, err, len(migrations))
		}
	})
	t.Run("concurrent Up", func(t *testing.T) {
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = s.Up(ctx) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		st, err := s.Status(ctx)
		if err != nil || len(st.Pending) != 0 || len(st.Executed) != len(migrations) {
			t.Fatalf("Status = %+v, %v; want all executed", st, err)
		}
	})
	t.Run("Reset drops everything", func(t *testing.T) {
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, entity.KindService, uuid.NewString()); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Reset = %v, want an error about the missing table", err)
		}
		st, err := s.Status(ctx)
		if err != nil || len(st.Executed) != 0 {
			t.Fatalf("Status after Reset = %+v, %v; want nothing executed", st, err)
		}
	})
}

func TestStaleClaimIsTakenOver(t *testing.T) {
	s := migrated(t, testConfig(t))
	ctx := t.Context()
	// A claim left by an Apply that died between its LWT and its batch,
	// written long enough ago to count as stale.
	dead := uuid.NewString()
	old := time.Now().Add(-2 * staleClaimAge).UnixMicro()
	err := s.session.Query(`INSERT INTO `+s.ks+`.uniques (kind, field, value, id) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
		string(entity.KindService), "name", "orphaned", dead, old).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	young := uuid.NewString()
	err = s.session.Query(`INSERT INTO `+s.ks+`.uniques (kind, field, value, id) VALUES (?, ?, ?, ?)`,
		string(entity.KindService), "name", "in-flight", young).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		value   string
		wantErr bool
	}{
		{"stale claim of a record never written", "orphaned", false},
		{"young claim of an Apply in flight", "in-flight", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := storetest.Service(tt.value)
			err := s.Apply(ctx, []store.Op{{Type: store.OpInsert, Record: r}}, nil)
			var ue *store.UniqueError
			if tt.wantErr != errors.As(err, &ue) || (!tt.wantErr && err != nil) {
				t.Fatalf("Apply = %v, want UniqueError: %v", err, tt.wantErr)
			}
			got, err := s.GetByUnique(ctx, entity.KindService, "name", tt.value)
			if tt.wantErr != errors.Is(err, store.ErrNotFound) || (!tt.wantErr && got.ID != r.ID) {
				t.Fatalf("GetByUnique = %s, %v", got.ID, err)
			}
		})
	}
}

func TestInvalidOffsetFromServer(t *testing.T) {
	s := migrated(t, testConfig(t))
	// Well-formed base64 with our version byte, but not a paging state
	// Cassandra issued.
	off := encodeOffset([]byte("garbage paging state"))
	_, err := s.List(t.Context(), store.ListQuery{Kind: entity.KindService, Size: 1, Offset: off})
	if !errors.Is(err, store.ErrInvalidOffset) {
		t.Fatalf("List(forged offset) = %v, want ErrInvalidOffset", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens on port any more
	_, err = Open(ctx, Config{Port: port, Timeout: time.Second})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open(closed port) = %v, want ErrUnavailable", err)
	}
}

func BenchmarkGet(b *testing.B) {
	s := migrated(b, testConfig(b))
	ctx := context.Background()
	r := storetest.Service("bench")
	if err := s.Apply(ctx, []store.Op{{Type: store.OpInsert, Record: r}}, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, entity.KindService, r.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyInsert(b *testing.B) {
	s := migrated(b, testConfig(b))
	ctx := context.Background()
	ev := store.Event{ID: "e", NodeID: "n", Channel: "invalidations", Data: "services:x"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := storetest.Service(fmt.Sprintf("bench-%d", i))
		if err := s.Apply(ctx, []store.Op{{Type: store.OpInsert, Record: r}}, []store.Event{ev}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventsPoll(b *testing.B) {
	s := migrated(b, testConfig(b))
	ctx := context.Background()
	since, err := s.Now(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Events(ctx, since); err != nil {
			b.Fatal(err)
		}
	}
}
