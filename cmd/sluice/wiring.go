package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/cachebackends/lru"
	"github.com/sluice-gw/sluice/cachebackends/none"
	"github.com/sluice-gw/sluice/cachebackends/otter"
	"github.com/sluice-gw/sluice/cachebackends/redis"
	"github.com/sluice-gw/sluice/cachebackends/ristretto"
	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/gateway/node"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/cassandra"
	"github.com/sluice-gw/sluice/gateway/store/postgres"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
	"github.com/sluice-gw/sluice/internal/memlimit"
)

// datastore is what a node needs of a datastore: the contract plus
// migrations.
type datastore interface {
	store.Store
	store.Migrator
}

// stores maps the database setting to a constructor. It is the one place
// that knows the concrete datastores.
var stores = map[string]func(ctx context.Context, c *config.Config) (datastore, error){
	"sqlite": func(ctx context.Context, c *config.Config) (datastore, error) {
		return sqlite.Open(ctx, sqlite.Config{Path: c.SQLitePath, BusyTimeout: c.SQLiteBusyTimeout})
	},
	"postgres": func(ctx context.Context, c *config.Config) (datastore, error) {
		return postgres.Open(ctx, postgres.Config{
			Host: c.PgHost, Port: c.PgPort, User: c.PgUser, Password: c.PgPassword, Database: c.PgDatabase,
			Schema: c.PgSchema, SSL: c.PgSSL, Timeout: c.PgTimeout,
			MaxConcurrentQueries: c.PgMaxConcurrentQueries, PoolSize: c.PgPoolSize,
		})
	},
	// A DB-less node keeps its entities in a SQLite file of its own, in a
	// temporary directory removed when the node stops.
	"off": func(ctx context.Context, _ *config.Config) (datastore, error) {
		dir, err := os.MkdirTemp("", "sluice-dbless-")
		if err != nil {
			return nil, fmt.Errorf("database=off: %w", err)
		}
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "dbless.db")})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		return dblessStore{Store: st, dir: dir}, nil
	},
	"cassandra": func(ctx context.Context, c *config.Config) (datastore, error) {
		return cassandra.Open(ctx, cassandra.Config{
			ContactPoints: c.CassandraContactPoints, Port: c.CassandraPort, Keyspace: c.CassandraKeyspace,
			Username: c.CassandraUsername, Password: c.CassandraPassword,
			ReadConsistency: c.CassandraReadConsistency, WriteConsistency: c.CassandraWriteConsistency,
			ReplStrategy: c.CassandraReplStrategy, ReplFactor: c.CassandraReplFactor,
			DataCenters: strings.Join(c.CassandraDataCenters, ","), Timeout: c.CassandraTimeout,
		})
	},
}

// backends maps the cache_backend setting to a constructor.
var backends = map[string]func(c *config.Config) (cachebackends.Backend, error){
	"freecache": func(c *config.Config) (cachebackends.Backend, error) {
		return freecache.New(freecache.Config{MemCacheSize: int(c.MemCacheSize)})
	},
	"otter": func(c *config.Config) (cachebackends.Backend, error) {
		return otter.New(otter.Config{MemCacheSize: int(c.MemCacheSize)})
	},
	"ristretto": func(c *config.Config) (cachebackends.Backend, error) {
		return ristretto.New(ristretto.Config{MemCacheSize: int(c.MemCacheSize)})
	},
	"lru": func(c *config.Config) (cachebackends.Backend, error) {
		return lru.New(lru.Config{MemCacheSize: int(c.MemCacheSize)})
	},
	"redis": func(c *config.Config) (cachebackends.Backend, error) {
		return redis.New(redis.Config{Host: c.RedisHost, Port: c.RedisPort, Password: c.RedisPassword,
			Database: c.RedisDatabase, Prefix: c.RedisPrefix})
	},
	"none": func(*config.Config) (cachebackends.Backend, error) { return none.New(none.Config{}) },
}

// dblessStore is a DB-less node's datastore: it removes its directory on
// Close.
type dblessStore struct {
	*sqlite.Store
	dir string
}

func (s dblessStore) Close() error {
	err := s.Store.Close()
	return errors.Join(err, os.RemoveAll(s.dir))
}

// nodeOptions returns the options of a node that follow from the
// database and cache_backend settings, so that the node itself never
// switches on their names.
func nodeOptions(c *config.Config) node.Options {
	copts := cache.Options{TTL: c.DBCacheTTL, NegTTL: c.NegTTL(), ResurrectTTL: c.DBResurrectTTL, Backend: c.CacheBackend}
	if c.CacheBackend == "none" {
		// Every lookup goes to the datastore: this shows what the cache saves.
		copts.L1Entries, copts.NegativeEntries = -1, -1
	}
	return node.Options{Config: c, Cache: copts, DBSystem: c.Database, QueryTimeout: queryTimeout(c),
		DBLess: c.Database == "off"}
}

// queryTimeout is the configured datastore timeout (pg_timeout,
// cassandra_timeout); 0 for SQLite, which has no network to wait on. The
// datastore's own timeout may not cover the network (PostgreSQL's
// statement_timeout runs on the server): the node bounds each cache
// lookup with it, so that a slow link fails the request instead of
// hanging it.
func queryTimeout(c *config.Config) time.Duration {
	switch c.Database {
	case "postgres":
		return c.PgTimeout
	case "cassandra":
		return c.CassandraTimeout
	}
	return 0
}

func openStore(ctx context.Context, c *config.Config) (datastore, error) {
	open, ok := stores[c.Database]
	if !ok {
		return nil, fmt.Errorf("unknown database=%q (valid: %s)", c.Database, names(stores))
	}
	return open(ctx, c)
}

func newBackend(c *config.Config) (cachebackends.Backend, error) {
	mk, ok := backends[c.CacheBackend]
	if !ok {
		return nil, fmt.Errorf("unknown cache_backend=%q (valid: %s)", c.CacheBackend, names(backends))
	}
	return mk(c)
}

func names[V any](m map[string]V) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// memLimit says how the Go heap may grow: freecache preallocates
// mem_cache_size of pointer-free memory, which must not count towards the
// garbage the runtime lets accumulate (internal/memlimit). The other
// backends grow with what they hold and are left to GOGC.
func memLimit(c *config.Config) memlimit.Options {
	if c.CacheBackend != "freecache" {
		return memlimit.Options{}
	}
	return memlimit.Options{Arena: int64(c.MemCacheSize)}
}
