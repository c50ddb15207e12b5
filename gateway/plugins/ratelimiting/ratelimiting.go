// Package ratelimiting implements Kong's rate-limiting plugin with the
// local policy: fixed-window counters per second, minute, hour and day,
// kept in process.
package ratelimiting

import (
	"encoding/json"
	"net/http"
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

// Plugin is the rate-limiting plugin. It owns the counters, so they
// survive plugin set rebuilds (as Kong's shared-memory counters survive
// configuration changes). It is safe for concurrent use.
type Plugin struct {
	counters *counters
	now      func() time.Time
}

// New returns the rate-limiting plugin with empty counters.
func New() *Plugin { return &Plugin{counters: newCounters(), now: time.Now} }

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
	h := &handler{Config: cfg, p: p}
	for i, l := range cfg.limits() {
		if l != nil {
			m := int64(*l)
			h.periods = append(h.periods, limit{period: period(i), max: m, maxText: strconv.FormatInt(m, 10)})
		}
	}
	return h, nil
}

// handler is one configured instance. Its JSON form is its Config.
type handler struct {
	Config
	p       *Plugin
	periods []limit // configured periods, shortest first
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
	stop := h.p.counters.take(h.periods, now, k, used[:])
	reset := h.setHeaders(c.Response, now, used[:len(h.periods)], stop)
	if stop >= 0 {
		c.ExitMessage(http.StatusTooManyRequests, msgExceeded, "Retry-After", reset)
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
	}
	return c.ClientIP
}

var (
	_ plugins.Plugin   = (*Plugin)(nil)
	_ plugins.Accessor = (*handler)(nil)
)
