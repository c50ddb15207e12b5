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
	now   atomic.Int64 // unix ns
	epoch atomic.Pointer[time.Time]
	stop  chan struct{}
	once  sync.Once
}

// coarseTick is the coarse clock's resolution.
const coarseTick = 5 * time.Millisecond

func newCoarseClock() *coarseClock {
	c := &coarseClock{stop: make(chan struct{})}
	now := time.Now()
	c.now.Store(now.UnixNano())
	c.epoch.Store(&now)
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
			if now.Sub(*c.epoch.Load()) >= epochAge {
				c.epoch.Store(&now)
			}
		case <-c.stop:
			return
		}
	}
}

// epochAge is how often Precise's reference wall time is read again, so
// that its wall clock follows the system's (NTP) within this much.
const epochAge = time.Second

// Now returns the time, up to coarseTick behind.
func (c *coarseClock) Now() time.Time { return time.Unix(0, c.now.Load()) }

// Precise returns the time to the nanosecond, for the latencies the proxy
// reports. time.Now reads the wall clock and the monotonic clock (two
// vDSO calls, which cost more than most of a request's header work on
// virtual machines); Precise reads only the monotonic one, from a
// reference time at most epochAge old. Durations between its results are
// monotonic.
func (c *coarseClock) Precise() time.Time {
	e := c.epoch.Load()
	return e.Add(time.Since(*e))
}

// Stop ends the clock's goroutine. It is safe to call more than once.
func (c *coarseClock) Stop() { c.once.Do(func() { close(c.stop) }) }
