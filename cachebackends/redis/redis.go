// Package redis adapts a Redis server (github.com/redis/go-redis/v9) to
// cachebackends.Backend: a second level shared by every gateway node. Its
// size is bounded by the server's maxmemory, not by the node's memory.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/cachebackends"
)

// Config configures a Backend, with Kong's redis_* key names.
type Config struct {
	// Host is the server's host (redis_host). Required.
	Host string
	// Port is the server's port (redis_port). 0 means 6379.
	Port int
	// Password authenticates (redis_password); empty means none.
	Password string
	// Database selects the logical database (redis_database), 0 by default.
	Database int
	// Prefix is prepended to every key, so that several gateways or tests
	// can share one database; Clear and Range only touch keys under it.
	// Empty means "sluice:".
	Prefix string
	// Timeout bounds each command (the Backend interface carries no
	// context). 0 means 250ms.
	Timeout time.Duration
}

// Backend is a Redis-backed cachebackends.Backend, safe for concurrent use.
// A command that fails (server down, timeout) reads as a miss; Set reports
// it.
type Backend struct {
	c       *redis.Client
	prefix  string
	timeout time.Duration
}

// New connects to the server named by cfg and checks it answers PING.
func New(cfg Config) (*Backend, error) {
	if cfg.Host == "" {
		return nil, errors.New("redis: redis_host is required")
	}
	if cfg.Port == 0 {
		cfg.Port = 6379
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("redis: redis_port=%d is not a port number", cfg.Port)
	}
	if cfg.Database < 0 {
		return nil, fmt.Errorf("redis: redis_database=%d must not be negative", cfg.Database)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sluice:"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 250 * time.Millisecond
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	c := redis.NewClient(&redis.Options{Addr: addr, Password: cfg.Password, DB: cfg.Database,
		DialTimeout: cfg.Timeout, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout, MaxRetries: 1})
	b := &Backend{c: c, prefix: cfg.Prefix, timeout: cfg.Timeout}
	ctx, cancel := b.ctx()
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: cannot reach redis_host:redis_port=%s (redis_database=%d): %w", addr, cfg.Database, err)
	}
	return b, nil
}

// Get implements cachebackends.Backend.
func (b *Backend) Get(key []byte) ([]byte, bool) {
	ctx, cancel := b.ctx()
	defer cancel()
	v, err := b.c.Get(ctx, b.prefix+string(key)).Bytes()
	return v, err == nil
}

// Set implements cachebackends.Backend.
func (b *Backend) Set(key, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		ttl = 0
	}
	ctx, cancel := b.ctx()
	defer cancel()
	if err := b.c.Set(ctx, b.prefix+string(key), value, ttl).Err(); err != nil {
		return fmt.Errorf("redis: cannot set %q: %w", key, err)
	}
	return nil
}

// Delete implements cachebackends.Backend.
func (b *Backend) Delete(key []byte) {
	ctx, cancel := b.ctx()
	defer cancel()
	b.c.Del(ctx, b.prefix+string(key))
}

// Clear implements cachebackends.Backend: it deletes the keys under
// Config.Prefix, leaving the rest of the database alone.
func (b *Backend) Clear() {
	ctx := context.Background()
	it := b.c.Scan(ctx, 0, globEscape(b.prefix)+"*", 1000).Iterator()
	var batch []string
	for it.Next(ctx) {
		if batch = append(batch, it.Val()); len(batch) == 1000 {
			b.c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		b.c.Unlink(ctx, batch...)
	}
}

// Range implements cachebackends.Ranger over the keys under Config.Prefix
// (prefix removed).
func (b *Backend) Range(fn func(key []byte) bool) {
	ctx := context.Background()
	it := b.c.Scan(ctx, 0, globEscape(b.prefix)+"*", 1000).Iterator()
	for it.Next(ctx) {
		if !fn([]byte(strings.TrimPrefix(it.Val(), b.prefix))) {
			return
		}
	}
}

// Stats implements cachebackends.Statser with the server's figures:
// Entries is the database's key count (DBSIZE, every prefix), Bytes the
// server's used_memory and Evictions its evicted_keys. A figure the
// server does not give is -1.
func (b *Backend) Stats() cachebackends.Stats {
	ctx, cancel := b.ctx()
	defer cancel()
	st := cachebackends.Stats{Entries: -1, Bytes: -1, Evictions: -1}
	if n, err := b.c.DBSize(ctx).Result(); err == nil {
		st.Entries = n
	}
	info, err := b.c.Info(ctx, "memory", "stats").Result()
	if err != nil {
		return st
	}
	for line := range strings.Lines(info) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
		case k == "used_memory":
			st.Bytes = n
		case k == "evicted_keys":
			st.Evictions = n
		}
	}
	return st
}

// Close implements cachebackends.Closer.
func (b *Backend) Close() error { return b.c.Close() }

func (b *Backend) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), b.timeout)
}

// globEscape escapes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}

var (
	_ cachebackends.Backend = (*Backend)(nil)
	_ cachebackends.Statser = (*Backend)(nil)
	_ cachebackends.Ranger  = (*Backend)(nil)
	_ cachebackends.Closer  = (*Backend)(nil)
)
