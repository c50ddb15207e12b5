package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

func testGet(t *testing.T, s store.Store, _ options) {
	svc := Service("get-svc")
	rt := Route("get-route", svc.ID)
	mustApply(t, s, insert(svc), insert(rt))
	tests := []struct {
		name string
		kind entity.Kind
		id   string
		want *store.Record
	}{
		{"service", entity.KindService, svc.ID, &svc},
		{"route", entity.KindRoute, rt.ID, &rt},
		{"wrong kind", entity.KindRoute, svc.ID, nil},
		{"missing id", entity.KindService, Service("").ID, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Get(ctx(t), tt.kind, tt.id)
			checkRead(t, got, err, tt.want)
		})
	}
	t.Run("malformed id", func(t *testing.T) {
		// Datastores with a UUID id column may reject it instead of
		// reporting ErrNotFound; either way it is an error, not a record.
		if got, err := s.Get(ctx(t), entity.KindService, ""); err == nil {
			t.Fatalf("Get(empty id) = %+v, want an error", got)
		}
	})
}

func testGetByUnique(t *testing.T, s store.Store, _ options) {
	svc := Service("shared-name")
	rt := Route("shared-name", svc.ID)
	c := Consumer("alice", "")
	k := KeyAuth("secret-key", c.ID)
	b := BasicAuth("alice", c.ID)
	j := JWT("secret-key", c.ID)
	mustApply(t, s, insert(svc), insert(rt), insert(c), insert(k), insert(b), insert(j))
	tests := []struct {
		name  string
		kind  entity.Kind
		field string
		value string
		want  *store.Record
	}{
		{"service name", entity.KindService, "name", "shared-name", &svc},
		{"route name, same value as a service", entity.KindRoute, "name", "shared-name", &rt},
		{"consumer username", entity.KindConsumer, "username", "alice", &c},
		{"key", entity.KindKeyAuth, "key", "secret-key", &k},
		{"basic-auth username, same value as a consumer's", entity.KindBasicAuth, "username", "alice", &b},
		{"jwt key, same value as a key-auth key", entity.KindJWT, "key", "secret-key", &j},
		{"missing value", entity.KindService, "name", "nope", nil},
		{"value of another field", entity.KindConsumer, "custom_id", "alice", nil},
		{"empty value is not indexed", entity.KindConsumer, "custom_id", "", nil},
		{"kind without the value", entity.KindConsumer, "username", "shared-name", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.GetByUnique(ctx(t), tt.kind, tt.field, tt.value)
			checkRead(t, got, err, tt.want)
		})
	}
}

func testList(t *testing.T, s store.Store, _ options) {
	const n = 30
	var ops []store.Op
	var ids []string
	for i := range n {
		r := Service(fmt.Sprintf("svc-%02d", i))
		ops = append(ops, insert(r))
		ids = append(ids, r.ID)
	}
	mustApply(t, s, ops...)
	mustApply(t, s, insert(Route("not-a-service", ""))) // another kind stays out
	sort.Strings(ids)
	for _, size := range []int{1, 2, 7, n - 1, n, n + 1, 1000} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			got := listAll(t, s, store.ListQuery{Kind: entity.KindService, Size: size})
			if !slices.Equal(got, ids) {
				t.Fatalf("List visited %d ids %v, want %d ids in id order %v", len(got), got, len(ids), ids)
			}
		})
	}
	t.Run("data round-trips", func(t *testing.T) {
		p, err := s.List(ctx(t), store.ListQuery{Kind: entity.KindService, Size: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			got, err := s.Get(ctx(t), entity.KindService, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != entity.KindService || !bytes.Equal(r.Data, got.Data) || len(r.Data) == 0 {
				t.Fatalf("List record %+v differs from Get record %+v", r, got)
			}
		}
	})
	t.Run("empty kind", func(t *testing.T) {
		p, err := s.List(ctx(t), store.ListQuery{Kind: entity.KindConsumer, Size: 10})
		if err != nil || len(p.Records) != 0 || p.Next != "" {
			t.Fatalf("List(consumers) = %+v, %v; want an empty last page", p, err)
		}
	})
}

func testListForeign(t *testing.T, s store.Store, _ options) {
	a, b := Service("a"), Service("b")
	ops := []store.Op{insert(a), insert(b)}
	var onA []string
	for i := range 5 {
		r := Route(fmt.Sprintf("ra-%d", i), a.ID)
		onA = append(onA, r.ID)
		ops = append(ops, insert(r), insert(Route(fmt.Sprintf("rb-%d", i), b.ID)))
	}
	ops = append(ops, insert(Route("unbound", "")))
	pa := Plugin("rate-limiting", "", a.ID, "")
	ops = append(ops, insert(pa), insert(Plugin("cors", onA[0], "", "")))
	mustApply(t, s, ops...)
	sort.Strings(onA)
	tests := []struct {
		name string
		q    store.ListQuery
		want []string
	}{
		{"routes of a", store.ListQuery{Kind: entity.KindRoute, Foreign: "service", ForeignID: a.ID, Size: 2}, onA},
		{"routes of a, one page", store.ListQuery{Kind: entity.KindRoute, Foreign: "service", ForeignID: a.ID, Size: 100}, onA},
		{"plugins of a", store.ListQuery{Kind: entity.KindPlugin, Foreign: "service", ForeignID: a.ID, Size: 10}, []string{pa.ID}},
		{"routes of a missing service", store.ListQuery{Kind: entity.KindRoute, Foreign: "service", ForeignID: Service("").ID, Size: 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAll(t, s, tt.q)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("List(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func testListInvalid(t *testing.T, s store.Store, _ options) {
	mustApply(t, s, insert(Service("x")), insert(Service("y")))
	t.Run("invalid offset", func(t *testing.T) {
		// "YWJj" is well-formed base64 ("abc") but no offset List issued.
		for _, off := range []string{"%%%not-an-offset%%%", "!", "YWJj"} {
			_, err := s.List(ctx(t), store.ListQuery{Kind: entity.KindService, Size: 1, Offset: off})
			if !errors.Is(err, store.ErrInvalidOffset) {
				t.Errorf("List(offset %q) error = %v, want ErrInvalidOffset", off, err)
			}
		}
	})
	t.Run("invalid size", func(t *testing.T) {
		for _, size := range []int{0, -1, 1001} {
			p, err := s.List(ctx(t), store.ListQuery{Kind: entity.KindService, Size: size})
			if err == nil {
				t.Errorf("List(size %d) = %d records, want an error", size, len(p.Records))
			}
		}
	})
}

// listAll follows the Next chain from q and returns the ids it visits.
func listAll(t *testing.T, s store.Store, q store.ListQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 2000 {
			t.Fatalf("List(%+v) did not end after %d pages", q, pages)
		}
		p, err := s.List(ctx(t), q)
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		if len(p.Records) > q.Size {
			t.Fatalf("List(%+v) returned %d records, more than the size", q, len(p.Records))
		}
		if len(p.Records) == 0 && p.Next != "" {
			t.Fatalf("List(%+v) returned an empty page with Next %q", q, p.Next)
		}
		for _, r := range p.Records {
			if r.Kind != q.Kind {
				t.Fatalf("List(%+v) returned a record of kind %q", q, r.Kind)
			}
			ids = append(ids, r.ID)
		}
		if p.Next == "" {
			return ids
		}
		q.Offset = p.Next
	}
}

// checkRead checks that a Get returned want, or ErrNotFound when want is nil.
func checkRead(t *testing.T, got store.Record, err error, want *store.Record) {
	t.Helper()
	if want == nil {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %+v, %v; want ErrNotFound", got, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("got error %v, want record %s", err, want.ID)
	}
	if got.Kind != want.Kind || got.ID != want.ID || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("got %s %s %s, want %s %s %s", got.Kind, got.ID, got.Data, want.Kind, want.ID, want.Data)
	}
}

// mustApply applies ops and fails the test on error.
func mustApply(t *testing.T, s store.Store, ops ...store.Op) {
	t.Helper()
	if err := s.Apply(ctx(t), ops, nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// wantGone checks that no record of r's kind and id exists.
func wantGone(t *testing.T, s store.Store, r store.Record) {
	t.Helper()
	got, err := s.Get(ctx(t), r.Kind, r.ID)
	checkRead(t, got, err, nil)
}

// wantStored checks that r is stored as it is.
func wantStored(t *testing.T, s store.Store, r store.Record) {
	t.Helper()
	got, err := s.Get(ctx(t), r.Kind, r.ID)
	checkRead(t, got, err, &r)
}
