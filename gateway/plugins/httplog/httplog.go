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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "http-log"
	Priority = 12
)

// closeTimeout bounds how long Close waits for the queues to send what is
// waiting.
const closeTimeout = 5 * time.Second

// Plugin is the http-log plugin. It owns the queues, one per distinct
// configuration, so they survive plugin set rebuilds; Close sends what
// is waiting and stops them. It is safe for concurrent use.
type Plugin struct {
	m   *metrics
	log *slog.Logger

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
	return &Plugin{m: newMetrics(reg), log: log, queues: map[string]*queue{}}
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

// queue returns the queue of config key, started on first use; nil after
// Close.
func (p *Plugin) queue(h *handler) *queue {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	q := p.queues[h.key]
	if q == nil {
		q = newQueue(h.s, p.m, p.log)
		p.queues[h.key] = q
	}
	return q
}

// handler is one configured instance; its JSON form is its Config.
type handler struct {
	Config
	p   *Plugin
	s   settings
	key string
	// q is the queue, looked up once.
	q     sync.Once
	queue *queue
}

// Log implements plugins.Logger: it serializes the request and queues it.
func (h *handler) Log(c *plugins.Context) {
	h.q.Do(func() { h.queue = h.p.queue(h) })
	if h.queue == nil {
		h.p.m.dropped.WithLabelValues("shutdown").Inc()
		return
	}
	e, err := serialize(c)
	if err != nil {
		h.p.log.Error("http-log: cannot serialize a log entry", "err", err)
		return
	}
	h.queue.add(e)
}

var (
	_ plugins.Plugin    = (*Plugin)(nil)
	_ plugins.Describer = (*Plugin)(nil)
	_ plugins.Logger    = (*handler)(nil)
)
