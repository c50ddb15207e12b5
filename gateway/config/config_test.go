package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"proxy_listen", c.ProxyListen, "0.0.0.0:8000"},
		{"admin_listen", c.AdminListen, "127.0.0.1:8001"},
		{"database", c.Database, "sqlite"},
		{"db_update_frequency", c.DBUpdateFrequency, 5 * time.Second},
		{"db_update_propagation", c.DBUpdatePropagation, time.Duration(0)},
		{"db_cache_ttl", c.DBCacheTTL, time.Duration(0)},
		{"db_resurrect_ttl", c.DBResurrectTTL, 30 * time.Second},
		{"mem_cache_size", c.MemCacheSize, Size(128 << 20)},
		{"cache_backend", c.CacheBackend, "freecache"},
		{"db_update_push", c.DBUpdatePush, true},
		{"cassandra_contact_points", strings.Join(c.CassandraContactPoints, ","), "127.0.0.1"},
	}
	for _, ck := range checks {
		t.Run(ck.name, func(t *testing.T) {
			if ck.got != ck.want {
				t.Errorf("got %v, want %v", ck.got, ck.want)
			}
		})
	}
}

func TestNegTTLFallsBackToTTL(t *testing.T) {
	c, err := Load("", []string{"SLUICE_DB_CACHE_TTL=60"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.NegTTL(); got != time.Minute {
		t.Errorf("NegTTL() = %v, want db_cache_ttl 1m", got)
	}
	if err := c.Set("db_cache_neg_ttl", "5"); err != nil {
		t.Fatal(err)
	}
	if got := c.NegTTL(); got != 5*time.Second {
		t.Errorf("NegTTL() = %v, want 5s", got)
	}
}

func TestSourcesLaterWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.conf")
	conf := "# a comment\n db_update_frequency = 2   # trailing comment\n\nmem_cache_size = 64m\ncache_backend = otter\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"SLUICE_DB_UPDATE_FREQUENCY=0.5", "PATH=/bin", "SLUICE_TEST_PG_DSN=ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DBUpdateFrequency != 500*time.Millisecond {
		t.Errorf("db_update_frequency = %v, want the environment's 500ms", c.DBUpdateFrequency)
	}
	if c.MemCacheSize != 64<<20 || c.CacheBackend != "otter" {
		t.Errorf("file values lost: mem_cache_size=%d cache_backend=%s", c.MemCacheSize, c.CacheBackend)
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{{"5", 5 * time.Second}, {"0.25", 250 * time.Millisecond}, {"250ms", 250 * time.Millisecond}, {"1m", time.Minute}}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestBadInputNamesKeyAndAllowed(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		file    string
		want    []string
	}{
		{"unknown env key", []string{"SLUICE_DB_UPDATE_FREQUENCE=1"}, "", []string{`unknown key "db_update_frequence"`, "db_update_frequency", "SLUICE_DB_UPDATE_FREQUENCE"}},
		{"unknown file key", nil, "nope = 1\n", []string{`unknown key "nope"`, ":1"}},
		{"bad enum", []string{"SLUICE_DATABASE=mysql"}, "", []string{"database", "sqlite, postgres, cassandra"}},
		{"bad backend", []string{"SLUICE_CACHE_BACKEND=memcached"}, "", []string{"cache_backend", "freecache, otter, ristretto, lru, redis, none"}},
		{"bad duration", []string{"SLUICE_DB_UPDATE_FREQUENCY=soon"}, "", []string{"db_update_frequency", "500ms"}},
		{"zero frequency", []string{"SLUICE_DB_UPDATE_FREQUENCY=0"}, "", []string{"db_update_frequency must be greater than 0"}},
		{"bad size", []string{"SLUICE_MEM_CACHE_SIZE=lots"}, "", []string{"mem_cache_size", "128m"}},
		{"bad bool", []string{"SLUICE_DB_UPDATE_PUSH=maybe"}, "", []string{"db_update_push", "on, off"}},
		{"bad int", []string{"SLUICE_PG_PORT=abc"}, "", []string{"pg_port", "expected an integer"}},
		{"no equals", nil, "just words\n", []string{"key = value", ":1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = filepath.Join(t.TempDir(), "sluice.conf")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(path, tt.environ)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestPublicHidesSecrets(t *testing.T) {
	c, err := Load("", []string{"SLUICE_PG_PASSWORD=hunter2", "SLUICE_ADMIN_TOKEN=t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Public()
	for _, k := range []string{"pg_password", "admin_token"} {
		if p[k] != "******" {
			t.Errorf("Public()[%s] = %v, want it masked", k, p[k])
		}
	}
	if p["redis_password"] != "" {
		t.Errorf("an unset secret should stay empty, got %v", p["redis_password"])
	}
	if p["db_update_frequency"] != 5.0 {
		t.Errorf("durations should show as seconds, got %v", p["db_update_frequency"])
	}
}
