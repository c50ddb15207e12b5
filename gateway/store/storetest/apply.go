package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// applyCase is one Apply of a table test: setup is applied first and must
// succeed, then ops must fail as check says and leave stored as stored and
// gone as gone.
type applyCase struct {
	name   string
	setup  []store.Op
	ops    []store.Op
	check  func(t *testing.T, err error)
	stored []store.Record
	gone   []store.Record
}

func runApplyCases(t *testing.T, s store.Store, tests []applyCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.setup) > 0 {
				mustApply(t, s, tt.setup...)
			}
			tt.check(t, s.Apply(ctx(t), tt.ops, nil))
			for _, r := range tt.stored {
				wantStored(t, s, r)
			}
			for _, r := range tt.gone {
				wantGone(t, s, r)
			}
		})
	}
}

func testInsert(t *testing.T, s store.Store, _ options) {
	svc, dupName := Service("ins-svc"), Service("ins-svc")
	anon1, anon2 := Service(""), Service("")
	missing := Service("never-stored")
	orphan := Route("orphan", missing.ID)
	svc2 := Service("ins-svc2")
	rt2 := Route("ins-rt2", svc2.ID)
	c := Consumer("ins-user", "cid-1")
	c2 := Consumer("ins-user2", "cid-1")
	c3, c4 := Consumer("ins-user3", ""), Consumer("ins-user4", "")
	missingConsumer := Consumer("ghost", "")
	key := KeyAuth("k1", missingConsumer.ID)
	plugin := Plugin("cors", missing.ID, "", "")
	basic, basicDup := BasicAuth("ins-basic", c.ID), BasicAuth("ins-basic", c3.ID)
	jwt, jwtDup := JWT("ins-iss", c.ID), JWT("ins-iss", c3.ID)
	runApplyCases(t, s, []applyCase{
		{name: "new record", ops: []store.Op{insert(svc)}, check: noError, stored: []store.Record{svc}},
		{name: "duplicate id", ops: []store.Op{insert(withID(Service("other-name"), svc.ID))},
			check: wantUnique(entity.KindService, "id", svc.ID), stored: []store.Record{svc}},
		{name: "duplicate unique value", ops: []store.Op{insert(dupName)},
			check: wantUnique(entity.KindService, "name", "ins-svc"), gone: []store.Record{dupName}},
		{name: "empty unique values are not indexed", ops: []store.Op{insert(anon1), insert(anon2)},
			check: noError, stored: []store.Record{anon1, anon2}},
		{name: "duplicate second unique field", setup: []store.Op{insert(c)}, ops: []store.Op{insert(c2)},
			check: wantUnique(entity.KindConsumer, "custom_id", "cid-1"), gone: []store.Record{c2}},
		{name: "empty second unique field", ops: []store.Op{insert(c3), insert(c4)},
			check: noError, stored: []store.Record{c3, c4}},
		{name: "missing foreign record", ops: []store.Op{insert(orphan)},
			check: wantFK(entity.KindRoute, "service", entity.KindService, missing.ID), gone: []store.Record{orphan}},
		{name: "missing consumer", ops: []store.Op{insert(key)},
			check: wantFK(entity.KindKeyAuth, "consumer", entity.KindConsumer, missingConsumer.ID), gone: []store.Record{key}},
		{name: "missing route of a plugin", ops: []store.Op{insert(plugin)},
			check: wantFK(entity.KindPlugin, "route", entity.KindRoute, missing.ID), gone: []store.Record{plugin}},
		{name: "foreign record inserted earlier in the same Apply", ops: []store.Op{insert(svc2), insert(rt2)},
			check: noError, stored: []store.Record{svc2, rt2}},
		{name: "foreign id of another kind", ops: []store.Op{insert(Route("cross", c.ID))},
			check: wantFK(entity.KindRoute, "service", entity.KindService, c.ID)},
		{name: "duplicate basic-auth username", ops: []store.Op{insert(basic), insert(basicDup)},
			check: wantUnique(entity.KindBasicAuth, "username", "ins-basic"), gone: []store.Record{basic, basicDup}},
		{name: "duplicate jwt key", setup: []store.Op{insert(jwt)}, ops: []store.Op{insert(jwtDup)},
			check: wantUnique(entity.KindJWT, "key", "ins-iss"), stored: []store.Record{jwt}, gone: []store.Record{jwtDup}},
	})
}

func testUpdate(t *testing.T, s store.Store, _ options) {
	a, b := Service("upd-a"), Service("upd-b")
	rt := Route("upd-rt", a.ID)
	mustApply(t, s, insert(a), insert(b), insert(rt))
	aRenamed := renamed(a, "upd-a2")
	reuse := Service("upd-a")
	rtMoved := repointed(rt, b.ID)
	ghost := Service("upd-ghost")
	runApplyCases(t, s, []applyCase{
		{name: "keeps its own unique value", ops: []store.Op{update(a)}, check: noError, stored: []store.Record{a}},
		{name: "takes another's unique value", ops: []store.Op{update(renamed(a, "upd-b"))},
			check: wantUnique(entity.KindService, "name", "upd-b"), stored: []store.Record{a, b}},
		{name: "changes its unique value", ops: []store.Op{update(aRenamed)}, check: noError, stored: []store.Record{aRenamed}},
		{name: "old unique value is released", ops: []store.Op{insert(reuse)}, check: noError, stored: []store.Record{reuse}},
		{name: "missing record", ops: []store.Op{update(ghost)}, check: wantNotFound, gone: []store.Record{ghost}},
		{name: "missing foreign record", ops: []store.Op{update(repointed(rt, ghost.ID))},
			check: wantFK(entity.KindRoute, "service", entity.KindService, ghost.ID), stored: []store.Record{rt}},
		{name: "changes its foreign record", ops: []store.Op{update(rtMoved)}, check: noError, stored: []store.Record{rtMoved}},
		{name: "unsets its unique value", ops: []store.Op{update(renamed(b, ""))}, check: noError},
	})
	t.Run("indexes follow the update", func(t *testing.T) {
		checkUnique(t, s, entity.KindService, "upd-a2", &aRenamed)
		checkUnique(t, s, entity.KindService, "upd-a", &reuse)
		checkUnique(t, s, entity.KindService, "upd-b", nil)
		if got := listAll(t, s, store.ListQuery{Kind: entity.KindRoute, Foreign: "service", ForeignID: a.ID, Size: 10}); len(got) != 0 {
			t.Errorf("routes of the old service = %v, want none", got)
		}
		if got := listAll(t, s, store.ListQuery{Kind: entity.KindRoute, Foreign: "service", ForeignID: b.ID, Size: 10}); len(got) != 1 || got[0] != rt.ID {
			t.Errorf("routes of the new service = %v, want [%s]", got, rt.ID)
		}
	})
}

func testDelete(t *testing.T, s store.Store, _ options) {
	svc := Service("del-svc")
	rt := Route("del-rt", svc.ID)
	svc2 := Service("del-svc2")
	rt2 := Route("del-rt2", svc2.ID)
	lone := Service("del-lone")
	c := Consumer("del-user", "")
	key := KeyAuth("del-key", c.ID)
	mustApply(t, s, insert(svc), insert(rt), insert(svc2), insert(rt2), insert(lone), insert(c), insert(key))
	reuse := Service("del-lone")
	runApplyCases(t, s, []applyCase{
		{name: "unreferenced record", ops: []store.Op{del(lone)}, check: noError, gone: []store.Record{lone}},
		{name: "unique value is released", ops: []store.Op{insert(reuse)}, check: noError, stored: []store.Record{reuse}},
		{name: "missing record", ops: []store.Op{del(lone)}, check: wantNotFound},
		{name: "referenced record", ops: []store.Op{del(svc)},
			check: wantReferenced(entity.KindService, svc.ID, entity.KindRoute), stored: []store.Record{svc, rt}},
		{name: "referenced consumer", ops: []store.Op{del(c)},
			check: wantReferenced(entity.KindConsumer, c.ID, entity.KindKeyAuth), stored: []store.Record{c, key}},
		{name: "referrer deleted in the same Apply", ops: []store.Op{del(rt), del(svc)},
			check: noError, gone: []store.Record{rt, svc}},
		{name: "referrer deleted later in the same Apply", ops: []store.Op{del(svc2), del(rt2)},
			check: noError, gone: []store.Record{rt2, svc2}},
		{name: "delete then insert the same unique value", ops: []store.Op{del(key), insert(KeyAuth("del-key", c.ID))},
			check: noError, gone: []store.Record{key}},
	})
	t.Run("indexes follow the delete", func(t *testing.T) {
		checkUnique(t, s, entity.KindService, "del-svc", nil)
		if got := listAll(t, s, store.ListQuery{Kind: entity.KindRoute, Foreign: "service", ForeignID: svc.ID, Size: 10}); len(got) != 0 {
			t.Errorf("routes of the deleted service = %v, want none", got)
		}
	})
}

func testConcurrency(t *testing.T, s store.Store, o options) {
	tests := []struct {
		name string
		make func(i int) store.Record
		want func(t *testing.T, err error)
	}{
		{"same unique value", func(int) store.Record { return Service("race") },
			wantUnique(entity.KindService, "name", "race")},
		{"same id", func(i int) store.Record {
			return withID(Service(fmt.Sprintf("race-id-%d", i)), "7a1c2a7e-6f43-4d3e-9a55-0c1b7bd8f4a1")
		}, wantUnique(entity.KindService, "id", "7a1c2a7e-6f43-4d3e-9a55-0c1b7bd8f4a1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := make([]error, o.concurrency)
			var wg sync.WaitGroup
			for i := range errs {
				r := tt.make(i)
				wg.Go(func() { errs[i] = s.Apply(ctx(t), []store.Op{insert(r)}, nil) })
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
					continue
				}
				tt.want(t, err)
			}
			if wins != 1 {
				t.Fatalf("%d of %d racing inserts succeeded, want exactly 1", wins, len(errs))
			}
		})
	}
}

func testClose(t *testing.T, s store.Store, _ options) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx(t), entity.KindService, Service("").ID); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Close = %v, want an error other than ErrNotFound", err)
	}
}

func checkUnique(t *testing.T, s store.Store, kind entity.Kind, name string, want *store.Record) {
	t.Helper()
	got, err := s.GetByUnique(ctx(t), kind, "name", name)
	checkRead(t, got, err, want)
}

func noError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Apply error = %v, want ErrNotFound", err)
	}
}

func wantUnique(kind entity.Kind, field, value string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ue *store.UniqueError
		if !errors.As(err, &ue) {
			t.Fatalf("Apply error = %v, want *store.UniqueError", err)
		}
		if want := (store.UniqueError{Kind: kind, Field: field, Value: value}); *ue != want {
			t.Fatalf("Apply error = %+v, want %+v", *ue, want)
		}
	}
}

func wantFK(kind entity.Kind, field string, target entity.Kind, id string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var fe *store.ForeignKeyError
		if !errors.As(err, &fe) {
			t.Fatalf("Apply error = %v, want *store.ForeignKeyError", err)
		}
		if want := (store.ForeignKeyError{Kind: kind, Field: field, Target: target, ID: id}); *fe != want {
			t.Fatalf("Apply error = %+v, want %+v", *fe, want)
		}
	}
}

func wantReferenced(kind entity.Kind, id string, referrer entity.Kind) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var re *store.ReferencedError
		if !errors.As(err, &re) {
			t.Fatalf("Apply error = %v, want *store.ReferencedError", err)
		}
		if want := (store.ReferencedError{Kind: kind, ID: id, Referrer: referrer}); *re != want {
			t.Fatalf("Apply error = %+v, want %+v", *re, want)
		}
	}
}
