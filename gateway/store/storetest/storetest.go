// Package storetest is the conformance suite every store.Store must pass.
//
// A datastore's test calls Run with a function that opens a fresh, empty,
// migrated store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "db")})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// The suite calls open once per top-level subtest. Its Close subtest closes
// the store it opened, so a cleanup registered by open must tolerate a second
// Close (ignore its error).
//
// Every Apply is checked to be all-or-nothing, records and events alike, and
// PurgeEvents to delete exactly what it reports: each datastore provides
// both (Cassandra by claims, a logged batch and compensation; see its
// README), so the suite has no option to relax them.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/store"
)

// Option changes what Run expects of a datastore.
type Option func(*options)

type options struct {
	concurrency int
}

// WithConcurrency sets how many goroutines race in the concurrency
// subtests. The zero value means 8.
func WithConcurrency(n int) Option {
	return func(o *options) { o.concurrency = n }
}

// Run runs the conformance suite against the stores open returns. Open must
// return a fresh, empty, migrated store and arrange for it to be closed.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	t.Helper()
	o := options{concurrency: 8}
	for _, opt := range opts {
		opt(&o)
	}
	if o.concurrency <= 0 {
		o.concurrency = 8
	}
	suites := []struct {
		name string
		run  func(t *testing.T, s store.Store, o options)
	}{
		{"Get", testGet},
		{"GetByUnique", testGetByUnique},
		{"List", testList},
		{"ListForeign", testListForeign},
		{"ListInvalid", testListInvalid},
		{"Insert", testInsert},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"Atomicity", testAtomicity},
		{"Events", testEvents},
		{"PurgeEvents", testPurgeEvents},
		{"EventCursor", testEventCursor},
		{"Concurrency", testConcurrency},
		{"Counters", testCounters},
		{"Close", testClose},
	}
	for _, sc := range suites {
		t.Run(sc.name, func(t *testing.T) {
			sc.run(t, open(t), o)
		})
	}
}

// ctx returns a context that ends with the test or after 30 seconds.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
