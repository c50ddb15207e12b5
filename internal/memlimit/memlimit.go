// Package memlimit keeps a process's Go heap from doubling a large cache
// arena it holds for its whole life.
//
// The Go runtime lets the heap grow to twice the live heap before it
// collects (GOGC=100). A node with freecache (the default cache backend)
// allocates mem_cache_size of pointer-free memory at start: it is live
// heap, so a 763 MiB cache let the heap grow by another 763 MiB of garbage
// and a node serving 1M credentials reached 1.7 GiB of RSS
// (bench/RESULTS.md, "Scale"). Run sets the runtime's soft memory limit so
// that the heap grows by the live heap *outside* the arena, as GOGC=100
// would if the arena were not there: limit = live + max(live - arena,
// floor) + the runtime's own memory. Without an arena the limit equals
// GOGC's goal and nothing changes. The 50 % cap the runtime puts on GC CPU
// under a memory limit still applies, so a heap that outgrows the limit
// slows down instead of thrashing.
//
// An operator's GOMEMLIMIT always wins: Run does nothing when it is set.
package memlimit

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Options configures Run.
type Options struct {
	// Arena is the bytes of long-lived pointer-free memory the process
	// holds (the freecache arena: mem_cache_size). Zero makes Run a no-op.
	Arena int64
	// Floor is the least room left above the live heap for garbage;
	// 64 MiB when zero.
	Floor int64
	// Interval is how often the limit follows the live heap; 1 s when
	// zero.
	Interval time.Duration
}

// The runtime/metrics read. heapClasses are the heap's own classes, which
// total minus them leaves the runtime's memory besides the heap (stacks,
// metadata, buffers).
const (
	liveMetric  = "/gc/heap/live:bytes"
	totalMetric = "/memory/classes/total:bytes"
)

var heapClasses = []string{
	"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/released:bytes",
}

// Enabled reports whether Run would set limits: an arena and no
// GOMEMLIMIT in the environment.
func Enabled(opts Options) bool {
	return opts.Arena > 0 && os.Getenv("GOMEMLIMIT") == ""
}

// Run sets the soft memory limit from the live heap now and then every
// Interval until ctx is done; then it restores the limit it found.
func Run(ctx context.Context, opts Options) {
	if !Enabled(opts) {
		return
	}
	if opts.Floor <= 0 {
		opts.Floor = 64 << 20
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	samples := make([]metrics.Sample, 0, 2+len(heapClasses))
	for _, name := range append([]string{liveMetric, totalMetric}, heapClasses...) {
		samples = append(samples, metrics.Sample{Name: name})
	}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		metrics.Read(samples)
		debug.SetMemoryLimit(Limit(opts, samples[0].Value.Uint64(), runtimeOverhead(samples)))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Limit is the soft memory limit for a live heap of live bytes with the
// runtime's own memory taking overhead bytes: the live heap (at least the
// arena, which is live from the start even before a GC has measured it),
// room for as much garbage as the heap holds outside the arena (at least
// opts.Floor), and the overhead.
func Limit(opts Options, live, overhead uint64) int64 {
	base := max(int64(live), opts.Arena)
	room := max(base-opts.Arena, opts.Floor)
	return base + room + int64(overhead)
}

// runtimeOverhead is the runtime's memory besides the heap, from samples
// read in Run's order.
func runtimeOverhead(samples []metrics.Sample) uint64 {
	total := samples[1].Value.Uint64()
	for _, s := range samples[2:] {
		total -= min(total, s.Value.Uint64())
	}
	return total
}
