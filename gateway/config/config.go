// Package config loads a node's configuration with Kong's key names.
//
// Sources, later wins: the defaults below, a kong.conf-style file
// ("key = value", # comments), then environment variables SLUICE_<KEY>
// (SLUICE_DB_UPDATE_FREQUENCY=0.5). An unknown key or a bad value is an
// error naming the key and what it allows.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Config is a node's configuration. Each field's `conf` tag is its key; the
// `default` tag is its value when no source sets it; `allowed` lists the
// values an enumerated key takes.
type Config struct {
	ProxyListen  string `conf:"proxy_listen" default:"0.0.0.0:8000"`
	AdminListen  string `conf:"admin_listen" default:"127.0.0.1:8001"`
	StatusListen string `conf:"status_listen" default:"127.0.0.1:8100"`
	LogLevel     string `conf:"log_level" default:"info" allowed:"debug,info,warn,error"`
	// NodeID names the node in cluster events; empty means a random UUID at
	// start.
	NodeID string `conf:"node_id"`

	// Database "off" is a DB-less node: its entities live in the node
	// (loaded from DeclarativeConfig, replaced by POST /config).
	Database string `conf:"database" default:"sqlite" allowed:"sqlite,postgres,cassandra,off"`
	// DeclarativeConfig is the file a DB-less node loads at start (Kong's
	// declarative format); empty starts with no entities.
	DeclarativeConfig string `conf:"declarative_config"`
	SQLitePath        string `conf:"sqlite_path" default:"sluice.db"`
	// SQLiteBusyTimeout is how long a statement waits for another process's
	// lock on the SQLite file.
	SQLiteBusyTimeout time.Duration `conf:"sqlite_busy_timeout" default:"5"`

	DBUpdateFrequency   time.Duration `conf:"db_update_frequency" default:"5"`
	DBUpdatePropagation time.Duration `conf:"db_update_propagation" default:"0"`
	// DBUpdatePush turns on push invalidation where the datastore supports
	// it (PostgreSQL LISTEN/NOTIFY); polling stays as the safety net.
	DBUpdatePush   bool          `conf:"db_update_push" default:"on"`
	DBCacheTTL     time.Duration `conf:"db_cache_ttl" default:"0"`
	DBCacheNegTTL  OptDuration   `conf:"db_cache_neg_ttl"`
	DBResurrectTTL time.Duration `conf:"db_resurrect_ttl" default:"30"`
	MemCacheSize   Size          `conf:"mem_cache_size" default:"128m"`
	CacheBackend   string        `conf:"cache_backend" default:"freecache" allowed:"freecache,otter,ristretto,lru,redis,none"`

	PgHost                 string        `conf:"pg_host" default:"127.0.0.1"`
	PgPort                 int           `conf:"pg_port" default:"5432"`
	PgUser                 string        `conf:"pg_user" default:"sluice"`
	PgPassword             string        `conf:"pg_password" secret:"true"`
	PgDatabase             string        `conf:"pg_database" default:"sluice"`
	PgSchema               string        `conf:"pg_schema"`
	PgSSL                  bool          `conf:"pg_ssl" default:"off"`
	PgTimeout              time.Duration `conf:"pg_timeout" default:"5"`
	PgMaxConcurrentQueries int           `conf:"pg_max_concurrent_queries" default:"0"`
	PgPoolSize             int           `conf:"pg_pool_size" default:"0"`

	CassandraContactPoints    []string      `conf:"cassandra_contact_points" default:"127.0.0.1"`
	CassandraPort             int           `conf:"cassandra_port" default:"9042"`
	CassandraKeyspace         string        `conf:"cassandra_keyspace" default:"sluice"`
	CassandraUsername         string        `conf:"cassandra_username"`
	CassandraPassword         string        `conf:"cassandra_password" secret:"true"`
	CassandraReadConsistency  string        `conf:"cassandra_read_consistency" default:"ONE"`
	CassandraWriteConsistency string        `conf:"cassandra_write_consistency" default:"ONE"`
	CassandraReplStrategy     string        `conf:"cassandra_repl_strategy" default:"SimpleStrategy" allowed:"SimpleStrategy,NetworkTopologyStrategy"`
	CassandraReplFactor       int           `conf:"cassandra_repl_factor" default:"1"`
	CassandraDataCenters      []string      `conf:"cassandra_data_centers" default:"dc1:2,dc2:3"`
	CassandraTimeout          time.Duration `conf:"cassandra_timeout" default:"5"`

	RedisHost     string `conf:"redis_host" default:"127.0.0.1"`
	RedisPort     int    `conf:"redis_port" default:"6379"`
	RedisPassword string `conf:"redis_password" secret:"true"`
	RedisDatabase int    `conf:"redis_database" default:"0"`
	// RedisPrefix is prepended to every cache key in Redis, so that several
	// clusters can share one Redis database.
	RedisPrefix string `conf:"redis_prefix" default:"sluice:"`

	PrometheusKongCompat bool `conf:"prometheus_kong_compat" default:"off"`
	// ShutdownDrainDelay is how long a stopping node keeps serving, with
	// /status/ready answering 503 "draining" and keep-alive off, before it
	// stops accepting connections, so that a load balancer polling
	// readiness takes it out first (kong quit --wait).
	ShutdownDrainDelay time.Duration `conf:"shutdown_drain_delay" default:"0"`
	// ProxyMaxHeaderSize bounds the request line and headers of a proxied
	// request (larger: 431).
	ProxyMaxHeaderSize Size `conf:"proxy_max_header_size" default:"64k"`
	// ClientMaxBodySize bounds a proxied request's body (larger: 413), as
	// Kong's client_max_body_size; 0 means no limit.
	ClientMaxBodySize Size `conf:"client_max_body_size" default:"0"`
	// ClientBodyBufferSize is how much of a buffered request body
	// (route.request_buffering) is kept in memory; the rest goes to a
	// temporary file, as nginx's client_body_buffer_size.
	ClientBodyBufferSize Size `conf:"client_body_buffer_size" default:"8k"`
	// ClientHeaderTimeout bounds reading a request's line and headers
	// (408 beyond), nginx's client_header_timeout.
	ClientHeaderTimeout time.Duration `conf:"nginx_http_client_header_timeout" default:"60"`
	// ClientBodyTimeout bounds the time between two reads of a request
	// body (408 beyond), nginx's client_body_timeout.
	ClientBodyTimeout time.Duration `conf:"nginx_http_client_body_timeout" default:"60"`
	// KeepaliveTimeout closes a client connection idle for that long
	// between requests, nginx's keepalive_timeout.
	KeepaliveTimeout time.Duration `conf:"nginx_http_keepalive_timeout" default:"75"`
	// SendTimeout bounds the time between two writes of a response to a
	// client, nginx's send_timeout.
	SendTimeout time.Duration `conf:"nginx_http_send_timeout" default:"60"`
	// AdminToken, when set, is required as "Authorization: Bearer <token>"
	// (or Kong-Admin-Token) on every Admin API request.
	AdminToken string `conf:"admin_token" secret:"true"`
	// LuaSSLTrustedCertificate lists the CAs that HTTPS upstream
	// certificates are verified against, as Kong's key of that name:
	// "system" (the host's trust store) and/or paths of PEM files.
	LuaSSLTrustedCertificate []string `conf:"lua_ssl_trusted_certificate" default:"system"`
}

// Size is a byte size written as Kong writes mem_cache_size: a number with
// an optional k, m or g suffix (1024-based).
type Size int64

// OptDuration is a duration that may be unset ("" or "none" in a file).
type OptDuration struct {
	D   time.Duration
	Set bool
}

// NegTTL returns db_cache_neg_ttl, falling back to db_cache_ttl when it is
// unset, as Kong does.
func (c *Config) NegTTL() time.Duration {
	if c.DBCacheNegTTL.Set {
		return c.DBCacheNegTTL.D
	}
	return c.DBCacheTTL
}

// Default returns the configuration with every default applied.
func Default() *Config {
	c := new(Config)
	for _, f := range fields() {
		if f.def == "" {
			continue
		}
		if err := f.set(c, f.def); err != nil {
			panic(fmt.Sprintf("config: bad default for %s: %v", f.key, err)) // programmer error
		}
	}
	return c
}

// Load returns the configuration from the defaults, the file at path (none
// when path is empty) and environ (os.Environ() form), in that order.
func Load(path string, environ []string) (*Config, error) {
	c := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("config: cannot read %s: %w", path, err)
		}
		defer f.Close()
		if err := c.readFile(f, path); err != nil {
			return nil, err
		}
	}
	if err := c.readEnv(environ); err != nil {
		return nil, err
	}
	return c, c.validate()
}

// Set assigns value to key as a file line would.
func (c *Config) Set(key, value string) error {
	f, ok := fieldByKey()[key]
	if !ok {
		return unknownKeyError(key)
	}
	if err := f.set(c, value); err != nil {
		return fmt.Errorf("config: invalid value %q for %s: %w", value, key, err)
	}
	return nil
}

// Public returns every key and its value, with secrets replaced by
// "******", for GET / and for logs.
func (c *Config) Public() map[string]any {
	out := make(map[string]any)
	v := reflect.ValueOf(c).Elem()
	for _, f := range fields() {
		val := v.Field(f.index).Interface()
		switch x := val.(type) {
		case time.Duration:
			val = x.Seconds()
		case OptDuration:
			if x.Set {
				val = x.D.Seconds()
			} else {
				val = nil
			}
		case Size:
			val = int64(x)
		}
		if f.secret && !reflect.ValueOf(val).IsZero() {
			val = "******"
		}
		out[f.key] = val
	}
	return out
}

// Keys returns every configuration key, sorted.
func Keys() []string {
	var keys []string
	for _, f := range fields() {
		keys = append(keys, f.key)
	}
	sort.Strings(keys)
	return keys
}

func (c *Config) readFile(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("config: %s:%d: expected \"key = value\", got %q", name, n, line)
		}
		if err := c.Set(strings.TrimSpace(key), strings.TrimSpace(value)); err != nil {
			return fmt.Errorf("%w (%s:%d)", err, name, n)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("config: cannot read %s: %w", name, err)
	}
	return nil
}

func (c *Config) readEnv(environ []string) error {
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		key, ok := strings.CutPrefix(name, "SLUICE_")
		if !ok || strings.HasPrefix(key, "TEST_") {
			continue // SLUICE_TEST_* configure the test suite, not a node
		}
		if err := c.Set(strings.ToLower(key), value); err != nil {
			return fmt.Errorf("%w (environment variable %s)", err, name)
		}
	}
	return nil
}

func (c *Config) validate() error {
	var errs []error
	if c.DBUpdateFrequency <= 0 {
		errs = append(errs, errors.New("config: db_update_frequency must be greater than 0 seconds"))
	}
	if c.DBUpdatePropagation < 0 {
		errs = append(errs, errors.New("config: db_update_propagation must be 0 or more seconds"))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"db_cache_ttl", c.DBCacheTTL}, {"db_cache_neg_ttl", c.DBCacheNegTTL.D}, {"db_resurrect_ttl", c.DBResurrectTTL}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("config: %s must be 0 or more seconds", d.key))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"nginx_http_client_header_timeout", c.ClientHeaderTimeout}, {"nginx_http_client_body_timeout", c.ClientBodyTimeout},
		{"nginx_http_keepalive_timeout", c.KeepaliveTimeout}, {"nginx_http_send_timeout", c.SendTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("config: %s must be greater than 0 seconds", d.key))
		}
	}
	if c.ClientMaxBodySize < 0 || c.ClientBodyBufferSize < 0 {
		errs = append(errs, errors.New("config: client_max_body_size and client_body_buffer_size must be 0 or more"))
	}
	if c.MemCacheSize < 1<<20 && c.CacheBackend != "none" && c.CacheBackend != "redis" {
		errs = append(errs, fmt.Errorf("config: mem_cache_size=%d is too small: use at least 1m", c.MemCacheSize))
	}
	return errors.Join(errs...)
}

func unknownKeyError(key string) error {
	return fmt.Errorf("config: unknown key %q (known keys: %s)", key, strings.Join(Keys(), ", "))
}
