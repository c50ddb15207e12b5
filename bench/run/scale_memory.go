package run

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/load"
	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// warmKeys requests route 0 once with every consumer's key on each node
// (a closed loop of 16 connections per node, the nodes at once), then a
// sample of the keys again, whose cache hit ratio says whether they all
// stayed cached.
func (b *bench) warmKeys(ctx context.Context, nodes []*harness.Node, d *dataset, sc *report.Scale) error {
	b.logf("scale: looking up each of the %d credentials once through every node's proxy", d.consumers)
	type counts struct{ next, ok, bad atomic.Int64 }
	cs := make([]counts, len(nodes))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	start := time.Now()
	stop := b.progress(func(elapsed time.Duration) {
		var done int64
		for i := range cs {
			done += cs[i].ok.Load() + cs[i].bad.Load()
		}
		total := int64(d.consumers * len(nodes))
		rate := float64(done) / elapsed.Seconds()
		b.logf("  %d/%d lookups (%.0f/s, ETA %v)", done, total, rate, (time.Duration(float64(total-done)/max(rate, 1)) * time.Second).Round(time.Second))
	})
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i, n := range nodes {
		for range 16 {
			wg.Go(func() {
				for {
					k := int(cs[i].next.Add(1)) - 1
					if k >= d.consumers || ctx.Err() != nil {
						return
					}
					status, err := get(ctx, client, n.ProxyURL+d.routePath(0), d.key(k))
					if err != nil || status != http.StatusOK {
						cs[i].bad.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s key %s: status %d, %v", n.Name, d.key(k), status, err))
						continue
					}
					cs[i].ok.Add(1)
				}
			})
		}
	}
	wg.Wait()
	stop()
	secs := time.Since(start).Seconds()
	for i := range nodes {
		sc.Nodes[i].KeysWarmed, sc.Nodes[i].WarmErrors = int(cs[i].ok.Load()), int(cs[i].bad.Load())
		sc.Nodes[i].WarmRPS = float64(d.consumers) / secs
	}
	if e := firstErr.Load(); e != nil {
		b.logf("  first failed lookup: %s", e)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The second pass on a sample: every lookup should be a cache hit.
	sample := min(d.consumers, 2000)
	rng := rand.New(rand.NewPCG(3, 4))
	before, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	keys := rng.Perm(d.consumers)[:sample]
	for _, n := range nodes {
		for _, k := range keys {
			if _, err := get(ctx, client, n.ProxyURL+d.routePath(0), d.key(k)); err != nil {
				return fmt.Errorf("bench: scale: second pass on %s: %w", n.Name, err)
			}
		}
	}
	after, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	for i := range nodes {
		diff := func(name string) float64 { return after[i].Sum(name) - before[i].Sum(name) }
		hits, miss := diff("sluice_cache_hits_total"), diff("sluice_cache_misses_total")+diff("sluice_cache_negative_hits_total")
		if hits+miss > 0 {
			sc.Nodes[i].SampleHitRatio = hits / (hits + miss)
		}
		b.logf("  %s: %d keys looked up (%d errors), %.0f/s; second pass on %d keys: cache hit ratio %.4f",
			nodes[i].Name, sc.Nodes[i].KeysWarmed, sc.Nodes[i].WarmErrors, sc.Nodes[i].WarmRPS, sample, sc.Nodes[i].SampleHitRatio)
	}
	return nil
}

func get(ctx context.Context, c *http.Client, u, key string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Apikey", key)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// steady sends open-loop traffic at rate requests/s to each node for
// dur, keys drawn uniformly over every consumer.
func (b *bench) steady(ctx context.Context, nodes []*harness.Node, d *dataset, dur time.Duration, rate int) {
	b.logf("scale: steady phase, %d requests/s per node for %v, keys uniform over the consumers", rate, dur)
	hdr := func(rng *rand.Rand) http.Header { return http.Header{"Apikey": {d.key(rng.IntN(d.consumers))}} }
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			s := load.Open(ctx, load.Options{URL: n.ProxyURL + d.routePath(0), Header: hdr, Duration: dur, Rate: rate})
			b.logf("  %s: %d requests, %d errors, p50 %.2f ms, p99 %.2f ms", n.Name, s.Requests, s.Errors, s.Latency.P50, s.Latency.P99)
		})
	}
	wg.Wait()
}

// readMemory fills each node's RSS, heap, cache and GC pauses (between
// the scrapes before and after) and the run's largest.
func (b *bench) readMemory(nodes []*harness.Node, before, after []scrape.Samples, sc *report.Scale) {
	gcFromHist := true
	for i, n := range nodes {
		sn := &sc.Nodes[i]
		if rss, err := procstat.RSS(n.Pid()); err == nil {
			sn.RSSBytes = rss
		}
		sn.HeapInuseBytes = int64(after[i].Sum("go_memstats_heap_inuse_bytes"))
		sn.CacheEntries, sn.CacheBytes = after[i].Sum("sluice_cache_entries"), after[i].Sum("sluice_cache_bytes")
		sn.CacheEvictions = after[i].Sum("sluice_cache_evictions_total")
		if h := after[i].Histogram(gcPauseHist); len(h) > 0 {
			pauses := scrape.Sub(h, before[i].Histogram(gcPauseHist))
			sn.GCPauses = pauses[len(pauses)-1].Count
			sn.GCPauseP99MS = 1000 * scrape.Quantile(pauses, 0.99)
		} else {
			gcFromHist = false
			sn.GCPauses = after[i].Sum("go_gc_duration_seconds_count") - before[i].Sum("go_gc_duration_seconds_count")
			sn.GCPauseP99MS = 1000 * after[i][`go_gc_duration_seconds{quantile="1"}`]
		}
		if math.IsNaN(sn.GCPauseP99MS) {
			sn.GCPauseP99MS = 0
		}
		sc.RSSBytes1MCredentials = max(sc.RSSBytes1MCredentials, sn.RSSBytes)
		sc.HeapInuseBytes = max(sc.HeapInuseBytes, sn.HeapInuseBytes)
		sc.GCPauseP99MS = max(sc.GCPauseP99MS, sn.GCPauseP99MS)
		b.logf("  %s: RSS %.0f MiB, heap in use %.0f MiB, %.0f cache entries (%.0f evicted), %.0f GC pauses, p99 %.3f ms",
			n.Name, float64(sn.RSSBytes)/(1<<20), float64(sn.HeapInuseBytes)/(1<<20), sn.CacheEntries, sn.CacheEvictions, sn.GCPauses, sn.GCPauseP99MS)
	}
	sc.MemoryMethod = "after every credential went through each node once and the steady phase: VmRSS of /proc/<pid>/status (bench/procstat), largest node"
	sc.GCMethod = "the runtime's GC stop-the-world pause histogram `sluice_gc_pauses_seconds` (runtime/metrics /sched/pauses/total/gc:seconds, bounds <= 25 % apart), delta over the credentials' pass and the steady phase, p99 interpolated in its buckets as histogram_quantile; largest node"
	if !gcFromHist {
		sc.GCMethod = "no `sluice_gc_pauses_seconds` on the nodes: the largest pause of the runtime's last 256 (`go_gc_duration_seconds{quantile=\"1\"}`) stands in for the p99; largest node"
	}
}
