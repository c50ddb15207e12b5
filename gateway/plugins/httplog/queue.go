package httplog

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// queue holds the entries of one configuration (Kong names its queues
// after the config) and sends them from its own goroutine, in batches,
// retrying with exponential backoff. The request path only appends to a
// slice under a mutex: a full queue drops the entry, counts and logs it.
// Memory follows the entries waiting, not max_entries.
type queue struct {
	s      settings
	client *http.Client
	m      *metrics
	log    *slog.Logger
	// wake tells the goroutine that an entry was added.
	wake chan struct{}
	// stop is closed by shutdown: the goroutine sends what is waiting,
	// trying each batch once, and returns.
	stop     chan struct{}
	stopOnce sync.Once
	// idle is how long the goroutine waits for an entry before it retires
	// the queue; forget removes a retired queue from its plugin.
	idle   time.Duration
	forget func(*queue)

	// mu guards pending, bytes and retired. Once retired, add refuses
	// entries: the goroutine is gone.
	mu       sync.Mutex
	pending  [][]byte
	bytes    int64
	retired  bool
	wg       sync.WaitGroup // the run goroutine and unlimited senders
	lastWarn atomic.Int64   // unix nanos of the last "queue full" warning
}

func newQueue(s settings, m *metrics, log *slog.Logger, idle time.Duration, forget func(*queue)) *queue {
	tr := &http.Transport{IdleConnTimeout: s.keepalive, MaxIdleConnsPerHost: 4,
		// Kong's http-log does not verify the log server's certificate
		// (ssl_verify = false).
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // Kong's behaviour, documented
	if s.keepalive <= 0 {
		tr.DisableKeepAlives = true
	}
	q := &queue{s: s, client: &http.Client{Transport: tr}, m: m, log: log, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), idle: idle, forget: forget}
	q.wg.Add(1)
	go q.run()
	return q
}

// add queues e without blocking, or drops it when the queue is full or
// stopped. It reports false, having done nothing, when the queue has
// retired: the caller gets a new one.
func (q *queue) add(e []byte) bool {
	reason := q.addLocked(e)
	switch reason {
	case "retired":
		return false
	case "shutdown":
		q.m.dropped.WithLabelValues(reason).Inc()
	case "":
		select {
		case q.wake <- struct{}{}:
		default:
		}
	default:
		q.drop(reason)
	}
	return true
}

// addLocked appends e under q.mu, or says why not.
func (q *queue) addLocked(e []byte) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.stop:
		return "shutdown"
	default:
	}
	switch {
	case q.retired:
		return "retired"
	case len(q.pending) >= q.s.maxEntries:
		return "queue_full"
	case q.s.maxBytes > 0 && q.bytes+int64(len(e)) > q.s.maxBytes:
		return "max_bytes"
	}
	q.pending = append(q.pending, e)
	q.bytes += int64(len(e))
	return ""
}

// drop counts a dropped entry and warns, at most once a second.
func (q *queue) drop(reason string) {
	q.m.dropped.WithLabelValues(reason).Inc()
	now := time.Now().UnixNano()
	if last := q.lastWarn.Load(); now-last > int64(time.Second) && q.lastWarn.CompareAndSwap(last, now) {
		q.log.Warn("http-log: queue full, log entry dropped", "endpoint", q.s.endpoint, "reason", reason,
			"max_entries", q.s.maxEntries, "max_bytes", q.s.maxBytes)
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// take removes and returns up to n entries.
func (q *queue) take(n int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(n, len(q.pending))
	batch := q.pending[:k:k]
	for _, e := range batch {
		q.bytes -= int64(len(e))
	}
	if q.pending = q.pending[k:]; len(q.pending) == 0 {
		q.pending = nil // let the batches' backing array go
	}
	return batch
}

// retire ends the queue when nothing is waiting, and reports whether it
// did.
func (q *queue) retire() bool {
	q.mu.Lock()
	if len(q.pending) > 0 {
		q.mu.Unlock()
		return false
	}
	q.retired = true
	q.mu.Unlock()
	q.forget(q)
	q.client.CloseIdleConnections()
	return true
}

// run collects batches: up to max_batch_size entries, waiting at most
// max_coalescing_delay after the first. After idle without an entry it
// retires the queue.
func (q *queue) run() {
	defer q.wg.Done()
	idle := time.NewTimer(q.idle)
	defer idle.Stop()
	for {
		if q.len() == 0 {
			idle.Reset(q.idle)
			select {
			case <-q.wake:
			case <-q.stop:
				q.flush()
				return
			case <-idle.C:
				if q.retire() {
					return
				}
			}
			continue
		}
		if q.s.batch > 1 && !q.coalesce() {
			q.flush()
			return
		}
		batch := q.take(q.s.batch)
		if q.s.unlimited {
			q.wg.Add(1)
			go func() { defer q.wg.Done(); q.deliver(batch) }()
			continue
		}
		q.deliver(batch)
	}
}

// coalesce waits until a batch is full or max_coalescing_delay has
// passed; false when the queue was stopped meanwhile.
func (q *queue) coalesce() bool {
	timer := time.NewTimer(q.s.coalesce)
	defer timer.Stop()
	for q.len() < q.s.batch {
		select {
		case <-q.wake:
		case <-timer.C:
			return true
		case <-q.stop:
			return false
		}
	}
	return true
}

// deliver sends batch, retrying failures after initial_retry_delay,
// doubled each time up to max_retry_delay, until max_retry_time has
// passed; then the batch is dropped. Shutdown stops the retries.
func (q *queue) deliver(batch [][]byte) {
	start := time.Now()
	delay := q.s.initialDelay
	for {
		err := q.send(batch)
		if err == nil {
			q.m.sent.Add(float64(len(batch)))
			return
		}
		q.m.sendErrors.Inc()
		if time.Since(start)+delay > q.s.maxRetryTime {
			q.m.dropped.WithLabelValues("retries_exhausted").Add(float64(len(batch)))
			q.log.Error("http-log: giving up on a batch after max_retry_time", "endpoint", q.s.endpoint,
				"entries", len(batch), "err", err)
			return
		}
		q.log.Warn("http-log: sending failed, retrying", "endpoint", q.s.endpoint, "in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-q.stop:
			q.m.dropped.WithLabelValues("shutdown").Add(float64(len(batch)))
			return
		}
		delay = min(2*delay, q.s.maxRetryDelay)
	}
}

// flush sends what is waiting at shutdown, each batch tried once.
func (q *queue) flush() {
	for {
		batch := q.take(max(q.s.batch, 1))
		if len(batch) == 0 {
			return
		}
		q.sendOnce(batch)
	}
}

func (q *queue) sendOnce(batch [][]byte) {
	if err := q.send(batch); err != nil {
		q.m.sendErrors.Inc()
		q.m.dropped.WithLabelValues("shutdown").Add(float64(len(batch)))
		q.log.Error("http-log: sending at shutdown failed", "endpoint", q.s.endpoint, "entries", len(batch), "err", err)
		return
	}
	q.m.sent.Add(float64(len(batch)))
}

// send makes one request: the entry itself when max_batch_size is 1, else
// a JSON array of the batch, as Kong does.
func (q *queue) send(batch [][]byte) error {
	var body []byte
	if q.s.batch == 1 && len(batch) == 1 {
		body = batch[0]
	} else {
		body = append(bytes.Join(batch, []byte{','}), ']')
		body = append([]byte{'['}, body...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if q.s.timeout > 0 { // 0: no timeout
		ctx, cancel = context.WithTimeout(ctx, q.s.timeout)
	}
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, q.s.method, q.s.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("http-log: %w", err)
	}
	for k, v := range q.s.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", q.s.contentType)
	if q.s.auth != "" {
		req.Header.Set("Authorization", q.s.auth)
	}
	resp, err := q.client.Do(req)
	if err != nil {
		return fmt.Errorf("http-log: request to %s: %w", q.s.endpoint, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("http-log: request to %s returned status code %d and body %q", q.s.endpoint, resp.StatusCode, msg)
	}
	return nil
}

// shutdown stops the queue and waits for what is waiting to be sent, at
// most until ctx is done.
func (q *queue) shutdown(ctx context.Context) error {
	q.stopOnce.Do(func() { close(q.stop) })
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.client.CloseIdleConnections()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("http-log: queue for %s: %w", q.s.endpoint, ctx.Err())
	}
}
