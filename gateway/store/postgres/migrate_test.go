package postgres

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
)

func TestUpConcurrent(t *testing.T) {
	c := freshConfig(t)
	nodes := make([]*Store, 4)
	for i := range nodes {
		nodes[i] = open(t, c)
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Go(func() { errs[i] = s.Up(testCtx(t)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Up = %v", i, err)
		}
	}
	var runs int
	if err := nodes[0].pool.QueryRow(testCtx(t), `SELECT count(*) FROM sluice_migrations`).Scan(&runs); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	if runs != len(migrations()) {
		t.Errorf("sluice_migrations has %d rows, want %d (each migration once)", runs, len(migrations()))
	}
	if _, err := nodes[3].Get(testCtx(t), entity.KindService, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after concurrent Up = %v, want ErrNotFound", err)
	}
}

func TestMigrationLifecycle(t *testing.T) {
	s := open(t, freshConfig(t))
	var names []string
	for _, m := range migrations() {
		names = append(names, m.name)
	}
	svc := storetest.Service("lifecycle")
	steps := []struct {
		name    string
		run     func() error
		exec    []string
		pending []string
	}{
		{"fresh schema", func() error { return nil }, nil, names},
		{"up", func() error { return s.Up(testCtx(t)) }, names, nil},
		{"up again is a no-op", func() error {
			if err := s.Apply(testCtx(t), []store.Op{{Type: store.OpInsert, Record: svc}}, nil); err != nil {
				return err
			}
			return s.Up(testCtx(t))
		}, names, nil},
		{"reset", func() error { return s.Reset(testCtx(t)) }, nil, names},
		{"up after reset", func() error { return s.Up(testCtx(t)) }, names, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.run(); err != nil {
				t.Fatalf("step: %v", err)
			}
			got, err := s.Status(testCtx(t))
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if !slices.Equal(got.Executed, st.exec) || !slices.Equal(got.Pending, st.pending) {
				t.Errorf("Status = %+v, want executed %v pending %v", got, st.exec, st.pending)
			}
		})
	}
	if _, err := s.Get(testCtx(t), entity.KindService, svc.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Reset and Up = %v, want ErrNotFound (data dropped)", err)
	}
}
