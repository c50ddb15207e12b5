// Package cluster carries invalidations between the nodes that share a
// datastore. Every Admin API write records its cluster events in the same
// transaction as the entity change (so none is lost when a node dies between
// the two, Kong issue #8176); each node polls for the others' events every
// db_update_frequency, with the datastore's clock as watermark, and, where
// the datastore can push (PostgreSQL NOTIFY), also applies them as they
// commit. Polling stays as the safety net.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Channel is the channel of invalidation events.
const Channel = "invalidations"

// Applier applies invalidations on this node.
type Applier interface {
	// Invalidate purges keys from this node's caches and rebuilds the
	// snapshots they name.
	Invalidate(ctx context.Context, keys []entity.CacheKey)
	// InvalidateAll purges everything: used when this node may have missed
	// events (they expired while it could not poll).
	InvalidateAll(ctx context.Context)
}

// Options configures a Cluster. The zero value of a field means the default
// its comment gives.
type Options struct {
	// NodeID identifies this node in the events it writes. Required.
	NodeID string
	// Frequency is db_update_frequency, the poll interval. 0 means 5s.
	Frequency time.Duration
	// Propagation is db_update_propagation: emitted events are not applied
	// before At+Propagation, and every poll looks that far back again.
	Propagation time.Duration
	// Grace is how far behind the previous poll's watermark each poll looks
	// again, to catch transactions that took their At before the previous
	// poll but committed after it. 0 means 2s. Duplicates are dropped by id.
	// A datastore that is a store.EventCursor is polled by cursor instead,
	// and Grace is not used.
	Grace time.Duration
	// Push applies events as the datastore pushes them, when it implements
	// store.Notifier.
	Push bool
	// EventTTL is how long events are kept in the datastore. 0 means
	// max(10*Propagation, 1h), as Kong.
	EventTTL time.Duration
	// PurgeInterval is how often this node deletes expired events. 0 means 1m.
	PurgeInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider defaults to a no-op provider.
	TracerProvider trace.TracerProvider
	// Registerer receives the cluster metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// Cluster is safe for concurrent use.
type Cluster struct {
	st      store.Store
	applier Applier
	opts    Options
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	metrics *metrics
	now     func() time.Time

	// pollMu serializes polls (the loop, catch-up after a push reconnect,
	// and tests).
	pollMu sync.Mutex
	// mu guards the fields below.
	mu sync.Mutex
	// watermark is the datastore clock of the last successful poll.
	watermark time.Time
	// cursor is the number of the last event read, when the datastore is
	// a store.EventCursor (cursorOK); polls then read the events after it
	// instead of re-reading a grace window.
	cursor   int64
	cursorOK bool
	// started is the datastore clock at Start. Events written before it are
	// re-read by the first polls' grace window and applied (to be safe), but
	// their age says nothing about propagation, so they are not counted in
	// the lag histogram.
	started time.Time
	// clockOffset is datastore clock minus local clock, from the last poll.
	clockOffset time.Duration
	// seen maps event ids applied (or scheduled) to their At, for dedup.
	seen map[string]time.Time

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New returns a Cluster over st that applies other nodes' events with a.
// It does nothing in the background until Start.
func New(st store.Store, a Applier, opts Options) (*Cluster, error) {
	if opts.NodeID == "" {
		return nil, errors.New("cluster: node id is required")
	}
	if opts.Frequency <= 0 {
		opts.Frequency = 5 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 2 * time.Second
	}
	if opts.EventTTL <= 0 {
		opts.EventTTL = max(10*opts.Propagation, time.Hour)
	}
	if opts.PurgeInterval <= 0 {
		opts.PurgeInterval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = noop.NewTracerProvider()
	}
	return &Cluster{
		st: st, applier: a, opts: opts,
		log:     opts.Logger.With("component", "cluster"),
		tracer:  opts.TracerProvider.Tracer("github.com/sluice-gw/sluice/gateway/cluster"),
		prop:    propagation.TraceContext{},
		metrics: newMetrics(opts.Registerer, opts.Frequency),
		now:     time.Now,
		seen:    make(map[string]time.Time),
		stop:    make(chan struct{}),
	}, nil
}

// Events returns one invalidation event per key, for the caller to write in
// the same store.Apply as the change. The trace context of ctx travels in
// each event so that the nodes applying it link back to the write.
func (c *Cluster) Events(ctx context.Context, keys []entity.CacheKey) []store.Event {
	carrier := propagation.MapCarrier{}
	c.prop.Inject(ctx, carrier)
	events := make([]store.Event, 0, len(keys))
	for _, k := range keys {
		events = append(events, store.Event{
			ID: uuid.NewString(), NodeID: c.opts.NodeID, Channel: Channel,
			Data: k.String(), TraceParent: carrier.Get("traceparent"), Delay: c.opts.Propagation,
		})
	}
	c.metrics.emitted.Add(float64(len(events)))
	return events
}

// Invalidated applies keys on this node at once, after the write that
// produced their events committed. The Applier sees Local(ctx) true.
func (c *Cluster) Invalidated(ctx context.Context, keys []entity.CacheKey) {
	c.applier.Invalidate(context.WithValue(ctx, localKey{}, true), keys)
}

// localKey marks the context of an invalidation written by this node.
type localKey struct{}

// Local reports whether ctx is that of an invalidation this node wrote
// itself (a client waits for it), rather than one read from another node.
func Local(ctx context.Context) bool {
	v, _ := ctx.Value(localKey{}).(bool)
	return v
}

// Start sets the watermark to the datastore's clock and starts the poll,
// push and purge loops. They run until Shutdown.
func (c *Cluster) Start(ctx context.Context) error {
	now, err := c.st.Now(ctx)
	if err != nil {
		return fmt.Errorf("cluster: cannot read the datastore clock: %w", err)
	}
	var cursor int64
	cur, cursorOK := c.st.(store.EventCursor)
	if cursorOK {
		// Events numbered up to cursor committed before this node cached
		// anything; every later one is read by the first polls.
		if _, cursor, now, err = cur.EventsAfter(ctx, -1); err != nil {
			return fmt.Errorf("cluster: cannot read the event cursor: %w", err)
		}
	}
	c.mu.Lock()
	c.watermark, c.started = now, now
	c.cursor, c.cursorOK = cursor, cursorOK
	c.clockOffset = now.Sub(c.now())
	c.mu.Unlock()
	c.goLoop(c.pollLoop)
	c.goLoop(c.purgeLoop)
	if n, ok := c.st.(store.Notifier); ok && c.opts.Push {
		c.goLoop(func(ctx context.Context) { c.pushLoop(ctx, n) })
	}
	return nil
}

// Shutdown stops the loops and waits for them, giving up when ctx is done.
func (c *Cluster) Shutdown(ctx context.Context) error {
	c.stopOnce.Do(func() { close(c.stop) })
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: shutdown: %w", ctx.Err())
	}
}

// Poll reads and applies the events written since the last poll. The poll
// loop calls it every Frequency; it is exported for catch-up and tests.
func (c *Cluster) Poll(ctx context.Context) error {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	start := c.now()
	c.mu.Lock()
	last, cursor, cursorOK := c.watermark, c.cursor, c.cursorOK
	c.mu.Unlock()
	since := last.Add(-c.opts.Grace - c.opts.Propagation)
	events, cursor, now, err := c.read(ctx, since, cursor, cursorOK)
	c.metrics.pollDuration.Observe(c.now().Sub(start).Seconds())
	if err != nil {
		c.metrics.pollErrors.Inc()
		return fmt.Errorf("cluster: cannot poll events: %w", err)
	}
	if now.Sub(last) > c.opts.EventTTL/2 {
		// Events this node never read may have been purged: start over.
		c.log.Warn("event watermark is older than half the event TTL; purging the whole cache",
			"behind", now.Sub(last), "db_update_frequency", c.opts.Frequency)
		c.applier.InvalidateAll(ctx)
	}
	c.mu.Lock()
	c.watermark, c.cursor = now, cursor
	c.clockOffset = now.Sub(c.now())
	for id, at := range c.seen {
		if at.Before(since) {
			delete(c.seen, id)
		}
	}
	c.mu.Unlock()
	var ready []store.Event
	for _, ev := range events {
		if c.accept(ctx, ev, now) {
			ready = append(ready, ev)
		}
	}
	// One Invalidate for the whole poll: a route table rebuild then covers
	// every route change read, instead of one rebuild (and one wait) each.
	c.apply(ctx, ready)
	return nil
}

// read returns the events of one poll, the cursor after them, and the
// datastore's clock: by cursor when the datastore has one (commit order,
// nothing read twice), else those with At after since, a grace window
// behind the last poll's watermark.
func (c *Cluster) read(ctx context.Context, since time.Time, cursor int64, cursorOK bool) ([]store.Event, int64, time.Time, error) {
	if cursorOK {
		return c.st.(store.EventCursor).EventsAfter(ctx, cursor)
	}
	events, now, err := c.st.Events(ctx, since)
	return events, cursor, now, err
}

// accept records ev as seen and reports whether it is to be applied now.
// The node's own events, other channels and duplicates are dropped; an
// event whose NotBefore is still ahead (dbNow is the datastore's clock when
// it was read) is applied by a timer then.
func (c *Cluster) accept(ctx context.Context, ev store.Event, dbNow time.Time) bool {
	if ev.NodeID == c.opts.NodeID || ev.Channel != Channel {
		return false // the emitting node invalidated itself at once
	}
	c.mu.Lock()
	if _, dup := c.seen[ev.ID]; dup {
		c.mu.Unlock()
		return false
	}
	c.seen[ev.ID] = ev.At
	c.mu.Unlock()
	if wait := ev.NotBefore.Sub(dbNow); !ev.NotBefore.IsZero() && wait > 0 {
		time.AfterFunc(wait, func() {
			select {
			case <-c.stop: // shut down meanwhile
			default:
				c.apply(context.WithoutCancel(ctx), []store.Event{ev})
			}
		})
		return false
	}
	return true
}

// apply invalidates the keys of evs on this node in one call, inside a
// span linked to each write that emitted them, then records each event's
// lag.
func (c *Cluster) apply(ctx context.Context, evs []store.Event) {
	keys := make([]entity.CacheKey, 0, len(evs))
	kept := make([]store.Event, 0, len(evs))
	var links []trace.Link
	for _, ev := range evs {
		key, ok := entity.ParseCacheKey(ev.Data)
		if !ok {
			c.log.Warn("dropping an invalidation event with a malformed key", "id", ev.ID, "data", ev.Data)
			continue
		}
		keys, kept = append(keys, key), append(kept, ev)
		if ev.TraceParent == "" {
			continue
		}
		remote := trace.SpanContextFromContext(c.prop.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": ev.TraceParent}))
		if remote.IsValid() {
			links = append(links, trace.Link{SpanContext: remote})
		}
	}
	if len(keys) == 0 {
		return
	}
	ctx, span := c.tracer.Start(ctx, "sluice.cluster.apply", trace.WithLinks(links...))
	c.applier.Invalidate(ctx, keys)
	span.End()
	c.mu.Lock()
	now, started := c.now().Add(c.clockOffset), c.started
	c.mu.Unlock()
	c.metrics.applied.Add(float64(len(kept)))
	for _, ev := range kept {
		// Older events are catch-up, not propagation. One stamped with the
		// start's own instant may be either (SQLite's clock counts
		// milliseconds): it is left out.
		if ev.At.After(started) {
			c.metrics.lag.Observe(max(now.Sub(ev.At), 0).Seconds())
		}
	}
}

func (c *Cluster) goLoop(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	c.wg.Add(2)
	go func() { defer c.wg.Done(); fn(ctx) }()
	go func() { defer c.wg.Done(); <-c.stop; cancel() }()
}

func (c *Cluster) pollLoop(ctx context.Context) {
	every(ctx, c.opts.Frequency, func() {
		if err := c.Poll(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("poll failed; cached entities keep being served", "err", err)
		}
	})
}

// every calls fn every d until ctx is done.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// pushLoop listens for pushed events, reconnecting after a failure and
// catching up by polling once the connection is back. The listener only
// queues what it accepts; another goroutine applies everything queued in
// one batch. Applying waits for the snapshots' rebuild, so applying each
// event as it arrived queued a burst of changes behind one rebuild each
// (a p99 of 479-518 ms at 60 changes/s, 53 ms batched; bench/RESULTS.md).
func (c *Cluster) pushLoop(ctx context.Context, n store.Notifier) {
	q := &pushQueue{ready: make(chan struct{}, 1)}
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for {
			select {
			case <-ctx.Done():
				return
			case <-q.ready:
				if evs := q.take(); len(evs) > 0 {
					c.apply(ctx, evs)
				}
			}
		}
	}()
	defer func() { <-applied }()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := n.Listen(ctx, func(ev store.Event) {
			backoff = 100 * time.Millisecond
			c.mu.Lock()
			dbNow := c.now().Add(c.clockOffset)
			c.mu.Unlock()
			if c.accept(ctx, ev, dbNow) {
				q.push(ev)
			}
		})
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("push connection lost; polling continues, reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		if err := c.Poll(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("catch-up poll failed", "err", err)
		}
	}
}

// pushQueue holds the pushed events not applied yet.
type pushQueue struct {
	mu    sync.Mutex
	evs   []store.Event
	ready chan struct{} // a token: evs may hold events
}

func (q *pushQueue) push(ev store.Event) {
	q.mu.Lock()
	q.evs = append(q.evs, ev)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // a token is waiting already
	}
}

// take returns the queued events and empties the queue.
func (q *pushQueue) take() []store.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.evs
	q.evs = nil
	return evs
}

func (c *Cluster) purgeLoop(ctx context.Context) {
	every(ctx, c.opts.PurgeInterval, func() { c.purge(ctx) })
}

// purge deletes expired events in small batches, so that it never holds
// locks writers wait for.
func (c *Cluster) purge(ctx context.Context) {
	c.mu.Lock()
	before := c.watermark.Add(-c.opts.EventTTL)
	c.mu.Unlock()
	const batch = 500
	for ctx.Err() == nil {
		n, err := c.st.PurgeEvents(ctx, before, batch)
		if err != nil {
			c.log.Warn("cannot purge expired events", "err", err)
			return
		}
		if n < batch {
			return
		}
	}
}
