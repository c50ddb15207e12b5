// Package httplog implements Kong's http-log plugin: in the log phase it
// serializes the request as Kong's log serializer does and sends it to a
// log server through a bounded queue, in batches, with retries and
// backoff, from a goroutine of its own. The request never waits for the
// log server.
package httplog

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "http-log"
	Priority = 12
)

const (
	// closeTimeout bounds how long Close waits for the queues to send
	// what is waiting.
	closeTimeout = 5 * time.Second
	// idleTimeout is how long a queue without entries lives on: a
	// configuration that changed or went away leaves no goroutine behind.
	idleTimeout = time.Minute
)

// Plugin is the http-log plugin. It owns the queues, one per distinct
// configuration, so they survive plugin set rebuilds; a queue idle for a
// minute ends, and the next entry starts another. Close sends what is
// waiting and stops them. It is safe for concurrent use.
type Plugin struct {
	m    *metrics
	log  *slog.Logger
	idle time.Duration // idleTimeout; tests shorten it

	// mu guards queues and closed.
	mu     sync.Mutex
	queues map[string]*queue // by normalized config
	closed bool
}

// Options configures the plugin. The zero value logs to slog.Default and
// registers no metrics.
type Options struct {
	// Registerer receives the plugin's metrics; nil: a private registry.
	Registerer prometheus.Registerer
	// Logger receives dropped entries and failed sends.
	Logger *slog.Logger
}

// New returns the http-log plugin.
func New(opts Options) *Plugin {
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Plugin{m: newMetrics(reg), log: log, idle: idleTimeout, queues: map[string]*queue{}}
}

// Name implements plugins.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements plugins.Plugin.
func (*Plugin) Priority() int { return Priority }

// Configure implements plugins.Plugin. The queue is started on the first
// entry, so validating a config (Admin API, sluice config) starts nothing.
func (p *Plugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	cfg, s, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	key, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return &handler{Config: cfg, p: p, s: s, key: string(key)}, nil
}

// Close implements io.Closer: it stops every queue after sending what is
// waiting (each batch tried once), within closeTimeout. Entries logged
// afterwards are dropped.
func (p *Plugin) Close() error {
	p.mu.Lock()
	p.closed = true
	qs := p.queues
	p.queues = map[string]*queue{}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	for _, q := range qs {
		errs = append(errs, q.shutdown(ctx))
	}
	return errors.Join(errs...)
}

// queue returns the queue of h's config, started on first use; nil after
// Close.
func (p *Plugin) queue(h *handler) *queue {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	q := p.queues[h.key]
	if q == nil {
		key := h.key
		q = newQueue(h.s, p.m, p.log, p.idle, func(q *queue) { p.forget(key, q) })
		p.queues[key] = q
	}
	return q
}

// forget removes the retired queue q of config key.
func (p *Plugin) forget(key string, q *queue) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.queues[key] == q {
		delete(p.queues, key)
	}
}

// handler is one configured instance; its JSON form is its Config.
type handler struct {
	Config
	p   *Plugin
	s   settings
	key string
	// cur is the queue last used; looked up again when it retired.
	cur atomic.Pointer[queue]
}

// Log implements plugins.Logger: it serializes the request and queues it.
func (h *handler) Log(c *plugins.Context) {
	e, err := serialize(c)
	if err != nil {
		h.p.log.Error("http-log: cannot serialize a log entry", "err", err)
		return
	}
	for {
		q := h.cur.Load()
		if q == nil {
			if q = h.p.queue(h); q == nil {
				h.p.m.dropped.WithLabelValues("shutdown").Inc()
				return
			}
			h.cur.Store(q)
		}
		if q.add(e) {
			return
		}
		h.cur.CompareAndSwap(q, nil) // retired: the next lookup starts a new one
	}
}

var (
	_ plugins.Plugin    = (*Plugin)(nil)
	_ plugins.Describer = (*Plugin)(nil)
	_ plugins.Logger    = (*handler)(nil)
)
