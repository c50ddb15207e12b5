package ratelimiting

import (
	"strings"
	"sync"
	"time"
)

// period is one of the fixed windows.
type period uint8

const (
	second period = iota
	minute
	hour
	day
	month
	year
	numPeriods
)

// periodSeconds is the length of the fixed windows; months and years are
// calendar months and years in UTC, as Kong's.
var periodSeconds = [numPeriods]int64{1, 60, 3600, 86400}

var periodTitles = [numPeriods]string{"Second", "Minute", "Hour", "Day", "Month", "Year"}

func (p period) title() string { return periodTitles[p] }

// start returns the Unix second the window containing now began.
func (p period) start(now time.Time) int64 {
	switch p {
	case month:
		y, m, _ := now.UTC().Date()
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Unix()
	case year:
		return time.Date(now.UTC().Year(), 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	}
	s := now.Unix()
	return s - s%periodSeconds[p]
}

// end returns the Unix second the window containing now ends.
func (p period) end(now time.Time) int64 {
	switch p {
	case month:
		y, m, _ := now.UTC().Date()
		return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Unix()
	case year:
		return time.Date(now.UTC().Year()+1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	}
	return p.start(now) + periodSeconds[p]
}

// reset returns the whole seconds left until the window containing now ends.
func (p period) reset(now time.Time) int64 { return p.end(now) - now.Unix() }

// counterKey is what a counter counts: requests of one identifier on one
// route and service (Kong's local policy key, minus the period).
type counterKey struct {
	route, service, id string
}

// clone returns k with strings of its own. A key's strings may be request
// memory (the engine's ClientIP) that is reused once the request ends,
// while a window keeps its keys until it rolls over.
func (k counterKey) clone() counterKey {
	return counterKey{strings.Clone(k.route), strings.Clone(k.service), strings.Clone(k.id)}
}

// counters holds the current window of every period. Memory stays bounded
// by the keys seen in one window: a window's map is dropped as soon as a
// request arrives in the next one.
type counters struct {
	windows [numPeriods]window
}

type window struct {
	// mu guards start and counts.
	mu    sync.Mutex
	start int64
	// counts holds pointers so that counting a known key is a lookup: a
	// map assignment would store the caller's key strings over the copy.
	counts map[counterKey]*int64
}

func newCounters() *counters {
	c := &counters{}
	for i := range c.windows {
		c.windows[i].counts = map[counterKey]*int64{}
	}
	return c
}

// take counts one request of k in every period of ls at now, unless one
// of them is used up already. It returns the counts before this request
// and the index in ls of the first exhausted period, or -1. The windows
// are locked together (shortest first, a fixed order) so that concurrent
// requests cannot overshoot a limit. k's strings need only be valid during
// the call: take copies them when it adds k to a window.
func (c *counters) take(ls []limit, now time.Time, k counterKey, used []int64) int {
	// Unlocked explicitly, in reverse order, at the end: a defer in the
	// loop would allocate per request.
	for _, l := range ls {
		w := &c.windows[l.period]
		w.mu.Lock()
		w.rollLocked(l.period.start(now))
	}
	defer func() {
		for i := len(ls) - 1; i >= 0; i-- {
			c.windows[ls[i].period].mu.Unlock()
		}
	}()
	var counts [numPeriods]*int64
	stop := -1
	for i, l := range ls {
		used[i] = 0
		if n := c.windows[l.period].counts[k]; n != nil {
			counts[i], used[i] = n, *n
		}
		if used[i] >= l.max && stop < 0 {
			stop = i
		}
	}
	if stop < 0 {
		owned := false
		for i, l := range ls {
			if counts[i] != nil {
				*counts[i]++
				continue
			}
			if !owned {
				k, owned = k.clone(), true
			}
			n := int64(1)
			c.windows[l.period].counts[k] = &n
		}
	}
	return stop
}

// len returns the number of keys counted in p's current window.
func (c *counters) len(p period) int {
	w := &c.windows[p]
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.counts)
}

// rollLocked starts a new window when start is later than the current one.
// A request from an older window (clock step back) counts in the current.
func (w *window) rollLocked(start int64) {
	if start > w.start {
		w.start = start
		clear(w.counts)
	}
}
