package cache

import (
	"context"
	"fmt"
	"sync"
)

// flight runs one load per key at a time. Unlike singleflight's DoChan it
// runs the load on the first caller's goroutine rather than a new one, and
// unlike Do it lets every other caller stop waiting when its ctx ends.
type flight struct {
	// mu guards calls.
	mu    sync.Mutex
	calls map[string]*call
}

// call is one load in progress; val and err are set before done is closed.
type call struct {
	done chan struct{}
	val  outcome
	err  error
}

// do returns fn's result, running fn unless a call for key is already in
// progress, in which case it waits for that call or for ctx.
func (f *flight) do(ctx context.Context, key string, fn func() (outcome, error)) (outcome, error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.val, c.err
		case <-ctx.Done():
			return outcome{}, fmt.Errorf("cache: waiting for %s: %w", key, ctx.Err())
		}
	}
	if f.calls == nil {
		f.calls = make(map[string]*call)
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		// Runs even if fn panics, so that waiters are released.
		f.forgetCall(key, c)
		close(c.done)
	}()
	c.err = fmt.Errorf("cache: load of %s panicked", key)
	c.val, c.err = fn()
	return c.val, c.err
}

// forget makes the next do for key start a new call, even if one is in
// progress (after an invalidation, its result may be old).
func (f *flight) forget(key string) {
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
}

func (f *flight) forgetCall(key string, c *call) {
	f.mu.Lock()
	if f.calls[key] == c {
		delete(f.calls, key)
	}
	f.mu.Unlock()
}
