// Package ratelimiting implements Kong's rate-limiting plugin: fixed-window
// counters per second, minute, hour, day, month and year, kept in process
// (policy local), in the datastore (cluster) or on a Redis server (redis).
package ratelimiting

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "rate-limiting"
	Priority = 910
)

const msgExceeded = "API rate limit exceeded"

// Plugin is the rate-limiting plugin. It owns the local counters and the
// Redis clients, so they survive plugin set rebuilds (as Kong's
// shared-memory counters survive configuration changes). It is safe for
// concurrent use.
type Plugin struct {
	counters *counters
	now      func() time.Time
	cluster  Counters // nil: policy cluster is refused
	redis    *redisClients
}

// Options configures the plugin. The zero value has no cluster counters.
type Options struct {
	// Cluster keeps the counters of policy "cluster", shared by the nodes
	// of a cluster: the datastore. Nil refuses that policy.
	Cluster Counters
}

// New returns the rate-limiting plugin with empty counters.
func New(opts ...Options) *Plugin {
	p := &Plugin{counters: newCounters(), now: time.Now, redis: newRedisClients()}
	for _, o := range opts {
		p.cluster = o.Cluster
	}
	return p
}

// Close releases the Redis connections.
func (p *Plugin) Close() error { return p.redis.close() }

// Name implements plugins.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements plugins.Plugin.
func (*Plugin) Priority() int { return Priority }

// Configure implements plugins.Plugin.
func (p *Plugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	h := &handler{Config: cfg, p: p, errorCode: int(cfg.ErrorCode)}
	for i, l := range cfg.limits() {
		if l != nil {
			m := int64(*l)
			h.periods = append(h.periods, limit{period: period(i), max: m, maxText: strconv.FormatInt(m, 10)})
		}
	}
	switch cfg.Policy {
	case "cluster":
		if p.cluster == nil {
			return nil, plugins.FieldErrors{"policy": "policy 'cluster' needs a datastore that keeps counters"}
		}
		h.shared = p.cluster
	case "redis":
		h.shared = p.redis.get(cfg)
	}
	return h, nil
}

// handler is one configured instance. Its JSON form is its Config.
type handler struct {
	Config
	p         *Plugin
	periods   []limit  // configured periods, shortest first
	errorCode int      // ErrorCode as a status
	shared    Counters // the cluster or redis counters; nil for local
}

type limit struct {
	period period
	max    int64
	// maxText is max formatted, so that the headers do not format it per
	// request.
	maxText string
}

// Access implements plugins.Accessor. The headers are set on the response
// in the access phase: the engine sends them with the service's answer or
// with the 429.
func (h *handler) Access(c *plugins.Context) {
	now := h.p.now()
	k := counterKey{id: h.identifier(c)}
	if c.Route != nil {
		k.route = c.Route.ID
	}
	if c.Service != nil {
		k.service = c.Service.ID
	}
	var used [numPeriods]int64
	var stop int
	if h.shared != nil {
		var ok bool
		if stop, ok = h.takeShared(c, now, k, used[:]); !ok {
			return
		}
	} else {
		stop = h.p.counters.take(h.periods, now, k, used[:])
	}
	reset := h.setHeaders(c.Response, now, used[:len(h.periods)], stop)
	if stop >= 0 {
		c.ExitMessage(h.errorCode, h.ErrorMessage, "Retry-After", reset)
	}
}

// setHeaders sets Kong's X-RateLimit-* and RateLimit-* headers on resp
// unless hide_client_headers, and returns the seconds until the reported
// window resets. The RateLimit-* trio describes the period with the fewest
// requests remaining, or the exhausted one (stop >= 0).
func (h *handler) setHeaders(resp plugins.Response, now time.Time, used []int64, stop int) string {
	if h.HideClientHeaders && stop < 0 {
		return ""
	}
	best, bestRemaining := 0, int64(-1)
	for i, l := range h.periods {
		remaining := l.max - used[i]
		if stop < 0 {
			remaining-- // this request counts
		}
		remaining = max(remaining, 0)
		if !h.HideClientHeaders {
			resp.SetHeader(limitHeaders[l.period], l.maxText)
			resp.SetHeader(remainingHeaders[l.period], strconv.FormatInt(remaining, 10))
		}
		if bestRemaining < 0 || remaining < bestRemaining {
			best, bestRemaining = i, remaining
		}
	}
	if stop >= 0 {
		best = stop
	}
	l := h.periods[best]
	reset := strconv.FormatInt(l.period.reset(now), 10)
	if !h.HideClientHeaders {
		resp.SetHeader("RateLimit-Limit", l.maxText)
		resp.SetHeader("RateLimit-Remaining", strconv.FormatInt(bestRemaining, 10))
		resp.SetHeader("RateLimit-Reset", reset)
	}
	return reset
}

// limitHeaders and remainingHeaders are Kong's per-period header names
// ("X-RateLimit-Limit-Minute"), built once.
var limitHeaders, remainingHeaders = func() (l, r [numPeriods]string) {
	for p := range numPeriods {
		l[p] = "X-RateLimit-Limit-" + p.title()
		r[p] = "X-RateLimit-Remaining-" + p.title()
	}
	return l, r
}()

// identifier returns whom the request is counted against. The client IP
// is request memory: counters.take copies it when it keeps it.
func (h *handler) identifier(c *plugins.Context) string {
	switch h.LimitBy {
	case "consumer":
		if c.Consumer != nil {
			return c.Consumer.ID
		}
	case "credential":
		if c.Credential != nil {
			return c.Credential.PrimaryKey()
		}
	case "service":
		if c.Service != nil {
			return c.Service.ID
		}
	case "header":
		if v, ok := c.Request.Header(*h.HeaderName); ok && v != "" {
			return v
		}
	case "path":
		if p := c.Request.Path(); p == *h.Path {
			return p
		}
	}
	return c.ClientIP
}

var (
	_ plugins.Plugin   = (*Plugin)(nil)
	_ plugins.Accessor = (*handler)(nil)
)
