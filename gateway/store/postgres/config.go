package postgres

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config holds the datastore settings, with Kong's key names. The zero value
// of every field means its default.
type Config struct {
	// Host is the server's host name or address. Default "127.0.0.1".
	Host string `json:"pg_host"`
	// Port is the server's TCP port. Default 5432.
	Port int `json:"pg_port"`
	// User is the role to connect as. Default "sluice".
	User string `json:"pg_user"`
	// Password is the role's password. Empty sends none.
	Password string `json:"pg_password"`
	// Database is the database to connect to. Default "sluice".
	Database string `json:"pg_database"`
	// Schema, when set, is the schema that holds Sluice's tables (the
	// connection's search_path); migrations create it. Empty uses the
	// server's default search_path.
	Schema string `json:"pg_schema"`
	// SSL requires TLS (sslmode=require) when true. Default off.
	SSL bool `json:"pg_ssl"`
	// Timeout bounds connecting, each statement, and the wait for a free
	// query slot. Default 5s.
	Timeout time.Duration `json:"pg_timeout"`
	// MaxConcurrentQueries caps the queries this node runs at once. Zero
	// means no cap other than PoolSize.
	MaxConcurrentQueries int `json:"pg_max_concurrent_queries"`
	// PoolSize is the maximum number of pooled connections. Zero means
	// pgxpool's default, the greater of 4 and the number of CPUs.
	PoolSize int `json:"pg_pool_size"`
}

// Defaults of the zero-valued fields.
const (
	DefaultHost     = "127.0.0.1"
	DefaultPort     = 5432
	DefaultUser     = "sluice"
	DefaultDatabase = "sluice"
	DefaultTimeout  = 5 * time.Second
)

// notifyChannel is the LISTEN/NOTIFY channel of the default schema. Other
// schemas get their own channel so that two clusters sharing a database do
// not see each other's events.
const notifyChannel = "sluice_events"

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// validate reports the first invalid field, naming its key.
func (c Config) validate() error {
	switch {
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("pg_port=%d is not a TCP port (1-65535)", c.Port)
	case c.Timeout < 0:
		return fmt.Errorf("pg_timeout=%s is negative", c.Timeout)
	case c.MaxConcurrentQueries < 0:
		return fmt.Errorf("pg_max_concurrent_queries=%d is negative", c.MaxConcurrentQueries)
	case c.PoolSize < 0 || c.PoolSize > 1<<20:
		return fmt.Errorf("pg_pool_size=%d is out of range (0-%d)", c.PoolSize, 1<<20)
	case len(c.Schema) > 63:
		return fmt.Errorf("pg_schema=%q is longer than PostgreSQL's 63-byte identifier limit", c.Schema)
	}
	return nil
}

// poolConfig builds the pgxpool configuration of a validated c.
func (c Config) poolConfig() (*pgxpool.Config, error) {
	q := url.Values{}
	q.Set("sslmode", "disable")
	if c.SSL {
		q.Set("sslmode", "require")
	}
	u := url.URL{
		Scheme:   "postgres",
		Host:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path:     "/" + c.Database,
		RawQuery: q.Encode(),
	}
	u.User = url.User(c.User)
	if c.Password != "" {
		u.User = url.UserPassword(c.User, c.Password)
	}
	pc, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("pg_host, pg_port, pg_user or pg_database: %w", err)
	}
	pc.ConnConfig.ConnectTimeout = c.Timeout
	pc.ConnConfig.RuntimeParams["application_name"] = "sluice"
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(c.Timeout.Milliseconds(), 10)
	if c.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{c.Schema}.Sanitize()
	}
	if c.PoolSize > 0 {
		pc.MaxConns = int32(c.PoolSize)
	}
	return pc, nil
}

// channel returns the notification channel of c's schema.
func (c Config) channel() string {
	if c.Schema == "" {
		return notifyChannel
	}
	return fmt.Sprintf("%s_%016x", notifyChannel, c.schemaHash())
}

// lockKey returns the advisory lock key that serialises c's migrations.
func (c Config) lockKey() int64 {
	return int64(c.schemaHash() ^ 0x736c75696365) // "sluice"
}

// schemaHash returns the FNV-1a hash of pg_schema.
func (c Config) schemaHash() uint64 {
	h := fnv.New64a()
	h.Write([]byte(c.Schema))
	return h.Sum64()
}
