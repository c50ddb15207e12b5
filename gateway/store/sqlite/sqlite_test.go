package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "sluice.db"))
	})
}

func TestOpenConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"memory", Config{Path: ":memory:"}, "sqlite_path"},
		{"uri", Config{Path: "file:x.db"}, "sqlite_path"},
		{"query", Config{Path: "x.db?mode=ro"}, "sqlite_path"},
		{"negative busy timeout", Config{Path: "x.db", BusyTimeout: -time.Second}, "sqlite_busy_timeout"},
		{"missing directory", Config{Path: "/nonexistent/dir/x.db"}, "sqlite_path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%+v) succeeded, want an error naming %s", tt.cfg, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "sqlite: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open(%+v) error %q does not name %s", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.db")
	s, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	steps := []struct {
		name         string
		do           func(context.Context) error
		wantExecuted int
	}{
		{"fresh", nil, 0},
		{"up", s.Up, len(migrations)},
		{"up again", s.Up, len(migrations)},
		{"reset", s.Reset, 0},
		{"up after reset", s.Up, len(migrations)},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				if err := st.do(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			status, err := s.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(status.Executed) != st.wantExecuted || len(status.Executed)+len(status.Pending) != len(migrations) {
				t.Fatalf("Status = %+v, want %d executed of %d", status, st.wantExecuted, len(migrations))
			}
		})
	}
}

// TestMigrationRace starts several nodes on one new file at once, on
// several new files in turn: each node opens and migrates without error and
// the migrations run once. Opening a new file races on switching it to WAL,
// where SQLite answers SQLITE_BUSY without waiting for busy_timeout.
func TestMigrationRace(t *testing.T) {
	const files, nodes = 10, 6
	for f := range files {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("sluice-%d.db", f))
		errs := make([]error, nodes)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				<-start
				s, err := Open(t.Context(), Config{Path: path})
				if err != nil {
					errs[i] = err
					return
				}
				defer s.Close()
				errs[i] = s.Up(t.Context())
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("file %d, node %d: %v", f, i, err)
			}
		}
		s := openTest(t, path)
		var n int
		if err := s.reader.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) {
			t.Fatalf("file %d: schema_migrations has %d rows, want %d", f, n, len(migrations))
		}
	}
}

// TestEventsKeptBy002 upgrades a file whose events were written before
// migration 002_cluster_events_seq: they are kept, numbered in the order
// they were written, and later events are numbered after them.
func TestEventsKeptBy002(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "sluice.db"))
	ctx := t.Context()
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx, createMigrations); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:2] {
		if _, err := s.writer.ExecContext(ctx, m.up+`;INSERT INTO schema_migrations VALUES (?, 0)`, m.name); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	var old []string
	for i := range 3 {
		id := uuid.NewString()
		old = append(old, id)
		if _, err := s.writer.ExecContext(ctx, `INSERT INTO cluster_events (id, node_id, channel, data, trace, at, nbf)
			VALUES (?, 'n', 'invalidations', 'services:x', '', ?, ?)`, id, 1000-i, 1000-i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Up(ctx); err != nil {
		t.Fatal(err)
	}
	late := store.Event{ID: uuid.NewString(), NodeID: "n", Channel: "invalidations", Data: "services:y"}
	if err := s.Apply(ctx, nil, []store.Event{late}); err != nil {
		t.Fatal(err)
	}
	evs, last, _, err := s.EventsAfter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.ID)
	}
	if want := append(old, late.ID); !slices.Equal(got, want) || last != 4 {
		t.Fatalf("EventsAfter(0) = %v, %d; want %v, 4", got, last, want)
	}
}

// TestSharedFile has two Store instances, each with its own connection
// pools as separate processes would have, write concurrently to one file
// and read each other's events.
func TestSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.db")
	a, b := openTest(t, path), openTest(t, path)
	const writes = 40
	start, _ := a.Now(t.Context())
	nodes := []*Store{a, b}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Go(func() { errs[i] = writeNode(t.Context(), s, fmt.Sprintf("node-%d", i), writes) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, s := range nodes {
		t.Run(fmt.Sprintf("node-%d reads", i), func(t *testing.T) {
			evs, _, err := s.Events(t.Context(), start.Add(-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := countByNode(evs); got["node-0"] != writes || got["node-1"] != writes {
				t.Fatalf("events by node = %v, want %d each", got, writes)
			}
		})
	}
}

// TestMultiProcess runs two real node processes (this test binary) on one
// file: each writes services and events, following the file's events by
// cursor meanwhile, then waits to read the other's.
func TestMultiProcess(t *testing.T) {
	if os.Getenv("SLUICE_SQLITE_CHILD") != "" {
		t.Skip("child process")
	}
	path := filepath.Join(t.TempDir(), "sluice.db")
	openTest(t, path) // migrated before the children start
	var cmds []*exec.Cmd
	for i := range 2 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildNode$", "-test.v")
		cmd.Env = append(os.Environ(), "SLUICE_SQLITE_CHILD="+path, fmt.Sprintf("SLUICE_SQLITE_NODE=node-%d", i))
		cmds = append(cmds, cmd)
	}
	outs := make([][]byte, len(cmds))
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || !strings.Contains(string(outs[i]), "--- PASS: TestChildNode") {
			t.Errorf("node-%d: %v\n%s", i, err, outs[i])
		}
	}
}

// TestChildNode is the body of one TestMultiProcess node; it does nothing
// unless started by TestMultiProcess.
func TestChildNode(t *testing.T) {
	path, node := os.Getenv("SLUICE_SQLITE_CHILD"), os.Getenv("SLUICE_SQLITE_NODE")
	if path == "" {
		t.Skip("run by TestMultiProcess")
	}
	const writes = 30
	s, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start, _ := s.Now(t.Context())
	deadline := time.Now().Add(20 * time.Second)
	written := make(chan error, 1)
	go func() { written <- writeNode(t.Context(), s, node, writes) }()
	followCursor(t, s, writes, deadline) // while both processes write
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	for {
		evs, _, err := s.Events(t.Context(), start.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		got := countByNode(evs)
		if got["node-0"] == writes && got["node-1"] == writes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events by node = %v, want %d each", got, writes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// followCursor reads the file's events by cursor from the first, while
// the processes write, until it has read writes events
// of each node; each must come exactly once. It checks the claim behind
// store.EventCursor across processes: numbers follow commit order, so a
// reader never skips an event that commits after it read past a larger
// number.
func followCursor(t *testing.T, s *Store, writes int, deadline time.Time) {
	seen := map[string]int{}
	got := map[string]int{}
	var seq int64
	for got["node-0"] < writes || got["node-1"] < writes {
		if time.Now().After(deadline) {
			t.Fatalf("events by node read by cursor = %v, want %d each", got, writes)
		}
		evs, last, _, err := s.EventsAfter(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if seen[e.ID]++; seen[e.ID] > 1 {
				t.Fatalf("event %s read twice by cursor", e.ID)
			}
			got[e.NodeID]++
		}
		seq = last
		time.Sleep(time.Millisecond)
	}
}

func TestBusyIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.db")
	holder := openTest(t, path)
	s, err := Open(t.Context(), Config{Path: path, BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	tx, err := holder.writer.BeginTx(t.Context(), nil) // IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = s.Apply(t.Context(), []store.Op{{Type: store.OpInsert, Record: storetest.Service("busy")}}, nil)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "sqlite_busy_timeout") {
		t.Fatalf("Apply while locked = %v, want ErrUnavailable naming sqlite_busy_timeout", err)
	}
	if _, err := s.Get(t.Context(), entity.KindService, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get while locked = %v, want reads to proceed (ErrNotFound)", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func BenchmarkGet(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "sluice.db"))
	svc := storetest.Service("bench")
	if err := s.Apply(b.Context(), []store.Op{{Type: store.OpInsert, Record: svc}}, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(context.Background(), entity.KindService, svc.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkApply(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "sluice.db"))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		svc := storetest.Service(fmt.Sprintf("bench-%d", i))
		ev := store.Event{ID: uuid.NewString(), NodeID: "n", Channel: "invalidations", Data: "services:" + svc.ID}
		if err := s.Apply(b.Context(), []store.Op{{Type: store.OpInsert, Record: svc}}, []store.Event{ev}); err != nil {
			b.Fatal(err)
		}
	}
}

// openTest opens and migrates the store at path, closed when tb ends.
func openTest(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), Config{Path: path})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Up(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// writeNode inserts n services, each with an event from node.
func writeNode(ctx context.Context, s *Store, node string, n int) error {
	for i := range n {
		svc := storetest.Service(fmt.Sprintf("%s-%d", node, i))
		ev := store.Event{ID: uuid.NewString(), NodeID: node, Channel: "invalidations", Data: "services:" + svc.ID}
		if err := s.Apply(ctx, []store.Op{{Type: store.OpInsert, Record: svc}}, []store.Event{ev}); err != nil {
			return fmt.Errorf("%s write %d: %w", node, i, err)
		}
	}
	return nil
}

func countByNode(evs []store.Event) map[string]int {
	got := map[string]int{}
	for _, e := range evs {
		got[e.NodeID]++
	}
	return got
}
