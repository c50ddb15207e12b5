package cluster

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// change is one kind of canary change and what a node shows before and
// after it.
type change struct {
	kind string
	// do makes the change on the writer and returns when its write was
	// answered: the window starts then.
	do             func(ctx context.Context) error
	path, key      string
	before, wanted int
}

// prober sends the probes: each (change, node) pair at most one request
// per interval, each waiting for its answer.
type prober struct {
	client   *http.Client
	interval time.Duration
	sent     atomic.Int64
}

// status sends one probe and returns the status (0 on a transport error).
func (p *prober) status(ctx context.Context, proxy, path, key string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxy+path, nil)
	if err != nil {
		return 0
	}
	if key != "" {
		req.Header.Set("Apikey", key)
	}
	req.Header.Set("User-Agent", "sluice-bench-canary")
	p.sent.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// until probes proxy+path until it answers want and returns the time from
// start to the send of the first such probe; false when timeout passed
// first.
func (p *prober) until(ctx context.Context, proxy, path, key string, want int, start time.Time, timeout time.Duration) (time.Duration, bool) {
	for time.Since(start) < timeout && ctx.Err() == nil {
		sent := time.Now()
		if p.status(ctx, proxy, path, key) == want {
			return max(sent.Sub(start), 0), true
		}
		// Pace from the send, so that a slow answer does not add a pause.
		if d := p.interval - time.Since(sent); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
	return 0, false
}
