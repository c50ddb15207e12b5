package postgres

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/storetest"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// dsnEnv names the variable holding the test server's URL.
const dsnEnv = testenv.PGDSNVar

func TestConformance(t *testing.T) {
	serverConfig(t) // skip (or fail in CI) once, not in every subtest
	storetest.Run(t, func(t *testing.T) store.Store {
		return openMigrated(t, freshConfig(t))
	})
}

func TestOpenErrors(t *testing.T) {
	base := serverConfig(t)
	tests := []struct {
		name        string
		mod         func(c *Config)
		unavailable bool
		want        string
	}{
		{"port out of range", func(c *Config) { c.Port = 70000 }, false, "pg_port=70000"},
		{"negative pool size", func(c *Config) { c.PoolSize = -1 }, false, "pg_pool_size=-1"},
		{"negative concurrency", func(c *Config) { c.MaxConcurrentQueries = -2 }, false, "pg_max_concurrent_queries=-2"},
		{"schema too long", func(c *Config) { c.Schema = strings.Repeat("s", 64) }, false, "pg_schema="},
		{"nothing listening", func(c *Config) { c.Port = 1 }, true, "pg_port=1"},
		{"missing database", func(c *Config) { c.Database = "no_such_db" }, true, `pg_database="no_such_db"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			s, err := Open(testCtx(t), c)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "postgres: cannot ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %q, want prefix %q and %q", err, "postgres: cannot ", tt.want)
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tt.unavailable {
				t.Errorf("errors.Is(%q, ErrUnavailable) = %t, want %t", err, got, tt.unavailable)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	want := Config{Host: "127.0.0.1", Port: 5432, User: "sluice", Database: "sluice", Timeout: 5 * time.Second}
	if c != want {
		t.Fatalf("Config{}.withDefaults() = %+v, want %+v", c, want)
	}
	if c.channel() != "sluice_events" {
		t.Errorf("default channel = %q, want sluice_events", c.channel())
	}
	a, b := Config{Schema: "a"}, Config{Schema: "b"}
	if a.channel() == b.channel() || a.lockKey() == b.lockKey() {
		t.Errorf("schemas a and b share channel %q or lock key %d", a.channel(), a.lockKey())
	}
}

func TestMaxConcurrentQueries(t *testing.T) {
	c := freshConfig(t)
	c.MaxConcurrentQueries = 1
	c.Timeout = 100 * time.Millisecond
	s := openMigrated(t, c)
	if err := s.acquire(testCtx(t)); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	_, err := s.Get(testCtx(t), entity.KindService, uuid.NewString())
	if err == nil || !strings.Contains(err.Error(), "pg_max_concurrent_queries=1") {
		t.Errorf("Get with every slot busy = %v, want an error naming pg_max_concurrent_queries=1", err)
	}
	s.release()
	if _, err := s.Get(testCtx(t), entity.KindService, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after release = %v, want ErrNotFound", err)
	}
}

func TestApplyRejectsBadInput(t *testing.T) {
	s := openMigrated(t, freshConfig(t))
	svc := storetest.Service("bad-input")
	tests := []struct {
		name   string
		ops    []store.Op
		events []store.Event
		want   string
	}{
		{"unknown op type", []store.Op{{Type: 99, Record: svc}}, nil, "unknown op type 99"},
		{"missing id", []store.Op{{Type: store.OpInsert, Record: store.Record{Kind: entity.KindService}}}, nil, "kind and id must be set"},
		{"unknown foreign field", []store.Op{{Type: store.OpInsert, Record: store.Record{Kind: entity.KindService,
			ID: "x", Data: []byte(`{}`), Foreign: map[string]string{"nope": "y"}}}}, nil, `"nope" is not a foreign field`},
		{"event without id", nil, []store.Event{{Channel: "invalidations"}}, "id must be set"},
		{"negative delay", nil, []store.Event{{ID: "e", Delay: -time.Second}}, "negative delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Apply(testCtx(t), tt.ops, tt.events)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "postgres: cannot apply: ") {
				t.Fatalf("Apply = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := s.Get(testCtx(t), entity.KindService, svc.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record of a rejected Apply was stored: Get = %v", err)
	}
}

// serverConfig returns the Config of the server named by SLUICE_TEST_PG_DSN.
// It skips the test when the variable is unset, unless CI=true.
func serverConfig(t testing.TB) Config {
	t.Helper()
	pg := testenv.Postgres(t)
	return Config{Host: pg.Host, Port: pg.Port, User: pg.User, Password: pg.Password, Database: pg.Database, SSL: pg.SSL}
}

// freshConfig returns serverConfig with a new random pg_schema, dropped when
// the test ends.
func freshConfig(t testing.TB) Config {
	t.Helper()
	c := serverConfig(t)
	c.Schema = testenv.Postgres(t).FreshSchema(t, "sluice_test_")
	return c
}

// openMigrated opens a Store on c, runs its migrations and closes it when
// the test ends.
func openMigrated(t testing.TB, c Config) *Store {
	t.Helper()
	s := open(t, c)
	if err := s.Up(testCtx(t)); err != nil {
		t.Fatalf("Up: %v", err)
	}
	return s
}

// open opens a Store on c and closes it when the test ends.
func open(t testing.TB, c Config) *Store {
	t.Helper()
	s, err := Open(testCtx(t), c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testCtx returns a context that ends with the test or after 30 seconds.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dsn returns SLUICE_TEST_PG_DSN, skipping or failing like serverConfig.
func dsn(t testing.TB) string {
	t.Helper()
	serverConfig(t)
	return os.Getenv(dsnEnv)
}

func TestConnectionLossIsUnavailable(t *testing.T) {
	c := freshConfig(t)
	c.PoolSize = 1
	s := openMigrated(t, c)
	conn, err := s.pool.Acquire(testCtx(t))
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	pid := conn.Conn().PgConn().PID()
	conn.Release()
	admin := open(t, serverConfig(t))
	if _, err := admin.pool.Exec(testCtx(t), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	_, err = s.Get(testCtx(t), entity.KindService, uuid.NewString())
	if !errors.Is(err, store.ErrUnavailable) || !strings.HasPrefix(err.Error(), "postgres: cannot get services: ") {
		t.Errorf("Get on a killed connection = %v, want a postgres: error wrapping ErrUnavailable", err)
	}
	if _, err := s.Get(testCtx(t), entity.KindService, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after the pool replaced the connection = %v, want ErrNotFound", err)
	}
}
