package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClock is a clock that ticks every coarseTick, for the per-read and
// per-write deadlines: reading the time costs about as much as the rest of
// a small read on the machines we measure, and deadlines of seconds do not
// need it to the nanosecond. The zero value is not usable: see
// newCoarseClock.
type coarseClock struct {
	now  atomic.Int64 // unix ns
	stop chan struct{}
	once sync.Once
}

// coarseTick is the coarse clock's resolution.
const coarseTick = 5 * time.Millisecond

func newCoarseClock() *coarseClock {
	c := &coarseClock{stop: make(chan struct{})}
	c.now.Store(time.Now().UnixNano())
	go c.run()
	return c
}

func (c *coarseClock) run() {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			c.now.Store(now.UnixNano())
		case <-c.stop:
			return
		}
	}
}

// Now returns the time, up to coarseTick behind.
func (c *coarseClock) Now() time.Time { return time.Unix(0, c.now.Load()) }

// Stop ends the clock's goroutine. It is safe to call more than once.
func (c *coarseClock) Stop() { c.once.Do(func() { close(c.stop) }) }
