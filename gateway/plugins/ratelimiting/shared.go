package ratelimiting

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Counters are the counters of policies cluster and redis, kept outside
// the process. The datastore's (store.Counters) serve policy cluster;
// redisCounters serve policy redis.
type Counters = store.Counters

// takeShared is take for the shared counters, as Kong's cluster and redis
// policies: read the usage of every configured window, refuse when one is
// used up, else count the request in each. The read and the write are two
// steps, so concurrent requests on several nodes may overshoot a limit by
// a few, as in Kong. ok is false when the counters could not be reached:
// the request was then let through without headers (fault_tolerant) or
// answered 500.
func (h *handler) takeShared(c *plugins.Context, now time.Time, k counterKey, used []int64) (stop int, ok bool) {
	keys := make([]string, len(h.periods))
	for i, l := range h.periods {
		keys[i] = sharedKey(k, l.period, now)
	}
	vals, err := h.shared.Usage(c.Ctx, keys)
	if err != nil || len(vals) != len(keys) {
		return -1, h.sharedFailed(c)
	}
	stop = -1
	for i, l := range h.periods {
		used[i] = vals[i]
		if used[i] >= l.max && stop < 0 {
			stop = i
		}
	}
	if stop >= 0 {
		return stop, true
	}
	expire := make([]time.Time, len(h.periods))
	for i, l := range h.periods {
		expire[i] = time.Unix(l.period.end(now), 0)
	}
	if err := h.shared.Increment(c.Ctx, keys, expire); err != nil {
		return -1, h.sharedFailed(c)
	}
	return -1, true
}

// sharedFailed lets the request through when fault tolerant, else answers
// 500. It returns false: the caller sets no headers.
func (h *handler) sharedFailed(c *plugins.Context) bool {
	if !h.FaultTolerant {
		c.ExitMessage(http.StatusInternalServerError, "An unexpected error occurred")
	}
	return false
}

// sharedKey is Kong's counter key:
// ratelimit:<route>:<service>:<identifier>:<window start in ms>:<period>.
func sharedKey(k counterKey, p period, now time.Time) string {
	return "ratelimit:" + k.route + ":" + k.service + ":" + k.id + ":" +
		strconv.FormatInt(p.start(now)*1000, 10) + ":" + periodNames[p]
}

// redisClients holds one client per Redis server configuration, shared by
// every instance and kept across plugin set rebuilds.
type redisClients struct {
	// mu guards byConfig.
	mu       sync.Mutex
	byConfig map[redisConfig]*redisCounters
}

// redisConfig is what identifies a Redis connection in a Config.
type redisConfig struct {
	host, username, password, serverName string
	port, database, timeout              int
	ssl, sslVerify                       bool
}

func newRedisClients() *redisClients {
	return &redisClients{byConfig: map[redisConfig]*redisCounters{}}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// get returns the counters on c's Redis server, connecting lazily.
func (r *redisClients) get(c Config) *redisCounters {
	key := redisConfig{host: deref(c.RedisHost), username: deref(c.RedisUsername), password: deref(c.RedisPassword),
		serverName: deref(c.RedisServerName), port: c.RedisPort, database: c.RedisDatabase, timeout: c.RedisTimeout,
		ssl: c.RedisSSL, sslVerify: c.RedisSSLVerify}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rc, ok := r.byConfig[key]; ok {
		return rc
	}
	timeout := time.Duration(key.timeout) * time.Millisecond
	opts := &redis.Options{Addr: net.JoinHostPort(key.host, strconv.Itoa(key.port)), Username: key.username,
		Password: key.password, DB: key.database, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout}
	if key.ssl {
		name := key.serverName
		if name == "" {
			name = key.host
		}
		opts.TLSConfig = &tls.Config{ServerName: name, InsecureSkipVerify: !key.sslVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // Kong's redis_ssl_verify=false
	}
	rc := &redisCounters{c: redis.NewClient(opts)}
	r.byConfig[key] = rc
	return rc
}

func (r *redisClients) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, rc := range r.byConfig {
		errs = append(errs, rc.c.Close())
		delete(r.byConfig, k)
	}
	return errors.Join(errs...)
}

// redisCounters are counters on one Redis server.
type redisCounters struct {
	c *redis.Client
}

// Usage implements store.Counters with one MGET.
func (r *redisCounters) Usage(ctx context.Context, keys []string) ([]int64, error) {
	vals, err := r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			if out[i], err = strconv.ParseInt(s, 10, 64); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Increment implements store.Counters with one pipeline of INCR and
// EXPIREAT per key.
func (r *redisCounters) Increment(ctx context.Context, keys []string, expire []time.Time) error {
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			p.Incr(ctx, k)
			p.ExpireAt(ctx, k, expire[i])
		}
		return nil
	})
	return err
}
