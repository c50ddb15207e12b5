package main

import (
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/config"
)

// TestNodeOptions: the choices that follow from database and
// cache_backend are made here, for the node to take as given.
func TestNodeOptions(t *testing.T) {
	for _, tt := range []struct {
		database, backend string
		timeout           time.Duration
		dbless, noLayers  bool
	}{
		{"sqlite", "freecache", 0, false, false},
		{"postgres", "redis", 7 * time.Second, false, false},
		{"cassandra", "otter", 9 * time.Second, false, false},
		{"off", "none", 0, true, true},
	} {
		c := config.Default()
		c.Database, c.CacheBackend = tt.database, tt.backend
		c.PgTimeout, c.CassandraTimeout = 7*time.Second, 9*time.Second
		c.DBCacheTTL, c.DBResurrectTTL = time.Minute, 2*time.Minute
		o := nodeOptions(c)
		if o.Config != c || o.DBSystem != tt.database || o.QueryTimeout != tt.timeout || o.DBLess != tt.dbless {
			t.Errorf("%s: config %p, db.system %q, timeout %v, DB-less %v; want %p, %q, %v, %v", tt.database,
				o.Config, o.DBSystem, o.QueryTimeout, o.DBLess, c, tt.database, tt.timeout, tt.dbless)
		}
		co := o.Cache
		if co.Backend != tt.backend || co.TTL != time.Minute || co.NegTTL != c.NegTTL() || co.ResurrectTTL != 2*time.Minute {
			t.Errorf("%s/%s: cache options %+v", tt.database, tt.backend, co)
		}
		if off := co.L1Entries < 0 && co.NegativeEntries < 0; off != tt.noLayers {
			t.Errorf("cache_backend=%s: L1Entries %d, NegativeEntries %d; in-memory layers off = %v, want %v",
				tt.backend, co.L1Entries, co.NegativeEntries, off, tt.noLayers)
		}
	}
}
