// Package yield lets a long loop off the request path give the requests
// that are ready their turn, on a process with one P.
//
// runtime.Gosched does not: the scheduler looks at its run queues before
// the network poller, so with one P (a node pinned to one CPU, or under a
// one-CPU quota) the goroutine that yielded is picked again at once, and
// the requests whose sockets became readable wait until the loop blocks or
// sysmon polls the network (every 10 ms at most). Now parks the caller the
// way a read on an idle socket does: it waits on a pipe a new goroutine
// writes to, the P finds its queues empty, polls the network, and runs
// what is ready there before the caller goes on (a few microseconds).
package yield

import (
	"os"
	"runtime"
	"sync"
	"time"
)

// pipe is the process's yield pipe, opened on first use.
var pipe = sync.OnceValues(func() ([2]*os.File, error) {
	r, w, err := os.Pipe()
	return [2]*os.File{r, w}, err
})

// Now parks the calling goroutine until the network poller has run, so
// that the requests it finds ready run first. If no pipe can be opened it
// falls back to runtime.Gosched.
func Now() {
	p, err := pipe()
	if err != nil {
		runtime.Gosched()
		return
	}
	// With one P the write comes after the read below has parked: the new
	// goroutine runs once the caller waits, and its byte wakes the caller
	// through the poller. (With more Ps it may come first and the read
	// does not wait; nothing is starved there.) Every Now reads one byte
	// and writes one, so concurrent callers cannot wait for each other's.
	go func() { _, _ = p[1].Write([]byte{0}) }()
	var b [1]byte
	_, _ = p[0].Read(b[:])
	// The poll may have readied the caller ahead of the requests it
	// found: let those queued run first.
	runtime.Gosched()
}

// Budget yields (Now) once Every has passed since it last did; a Budget
// kept across loops therefore yields at the first Check after a pause.
// The zero Budget yields every 100 µs (a yield costs about 2 µs:
// BenchmarkNow). A Budget belongs to one goroutine.
type Budget struct {
	Every time.Duration
	since time.Time
}

// Check is called once per step of the loop: it yields when the budget is
// spent. The first call starts the count.
func (b *Budget) Check() {
	now := time.Now()
	if b.since.IsZero() {
		b.since = now
		return
	}
	every := b.Every
	if every <= 0 {
		every = 100 * time.Microsecond
	}
	if now.Sub(b.since) < every {
		return
	}
	Now()
	b.since = time.Now()
}
