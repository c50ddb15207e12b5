package run

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/load"
	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// measure runs the closed loop (with CPU of pids sampled around it) then
// the open loop against url.
func (b *bench) measure(ctx context.Context, target, backend, url string, hdr load.Header, pids func() []int) report.Throughput {
	p := b.opts.Profile
	o := load.Options{URL: url, Header: hdr, OK: []int{200, 401}, Conns: p.Conns, Duration: p.Warmup}
	load.Closed(ctx, o) // warm-up: connections, caches
	cpu0 := cpuOf(pids())
	o.Duration = p.Closed
	c := load.Closed(ctx, o)
	cpu1 := cpuOf(pids())
	row := report.Throughput{Target: target, CacheBackend: backend, RPS: c.RPS, Conns: p.Conns,
		ClosedErrors: c.Errors, ClosedLatency: latency(c.Latency)}
	if cpu0 >= 0 && cpu1 >= 0 && c.Requests > 0 {
		row.CPUMicrosPerRequest = float64(cpu1-cpu0) / 1e3 / float64(c.Requests)
	}
	// Open loop at the profile's rate, but never above 60% of what the
	// closed loop reached (open-loop latency is for below saturation).
	rate := min(p.OpenRate, int(0.6*c.RPS))
	rate = max(rate, 50)
	o.Rate, o.Duration = rate, p.Open
	op := load.Open(ctx, o)
	row.OpenRate, row.OpenErrors, row.LatencyMS = rate, op.Errors, latency(op.Latency)
	if op.FirstError != "" {
		b.logf("  %s %s: %d open-loop errors, first: %s", target, backend, op.Errors, op.FirstError)
	}
	return row
}

func latency(l load.Latency) report.Latency {
	return report.Latency{P50: l.P50, P90: l.P90, P99: l.P99, P999: l.P999, Max: l.Max}
}

// cpuOf sums the CPU time of pids, or returns -1 when one cannot be read.
func cpuOf(pids []int) time.Duration {
	if len(pids) == 0 {
		return -1
	}
	var t time.Duration
	for _, pid := range pids {
		d, err := procstat.CPU(pid)
		if err != nil {
			return -1
		}
		t += d
	}
	return t
}

// bareTarget and bareFastTarget name the throughput rows of
// bench/bareproxy's httputil and fasthttp engines.
const (
	bareTarget     = "go-httputil"
	bareFastTarget = "go-fasthttp"
)

// throughput measures the upstream directly, the reference proxies (nginx
// when installed, bare Go proxies on fasthttp and on net/http), then one
// node per cache backend.
func (b *bench) throughput(ctx context.Context) ([]report.Throughput, []string, error) {
	p := b.opts.Profile
	var rows []report.Throughput
	var notes []string
	b.logf("throughput: direct to the upstream (%d conns closed loop %v, then open loop)", p.Conns, p.Closed)
	rows = append(rows, b.measure(ctx, "direct", "", b.upstream+"/", nil, func() []int { return nil }))
	b.logf("  direct: %.0f rps, open-loop p99 %.2f ms", rows[0].RPS, rows[0].LatencyMS.P99)

	bareDir := filepath.Join(b.opts.Out, "bareproxy")
	refs := []struct {
		target, name string
		start        func() (*refProxy, error)
	}{
		{"nginx", "nginx", func() (*refProxy, error) { return startNginx(filepath.Join(b.opts.Out, "nginx"), b.upstream) }},
		{bareFastTarget, "bare fasthttp", func() (*refProxy, error) { return startBareProxy(bareDir, b.opts.Binary, b.upstream, "fasthttp") }},
		{bareTarget, "bare httputil", func() (*refProxy, error) { return startBareProxy(bareDir, b.opts.Binary, b.upstream, "httputil") }},
	}
	for _, ref := range refs {
		if ctx.Err() != nil {
			return rows, notes, nil
		}
		rp, err := ref.start()
		if err != nil {
			notes = append(notes, ref.name+" comparison skipped: "+err.Error())
			b.logf("  %s skipped: %v", ref.name, err)
			continue
		}
		row := b.measure(ctx, ref.target, "", rp.url+"/", nil, rp.pids)
		rp.stop()
		rows = append(rows, row)
		b.logf("  %s: %.0f rps, %.1f CPU µs/req, open-loop p99 %.2f ms", ref.target, row.RPS, row.CPUMicrosPerRequest, row.LatencyMS.P99)
	}
	if ctx.Err() != nil {
		return rows, notes, nil
	}

	dir := filepath.Join(b.opts.Out, "throughput")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rows, notes, fmt.Errorf("bench: %w", err)
	}
	path := "/" + b.prefix + "-bench"
	hdr := keyHeader(b.prefix, p.Consumers, p.UnknownShare)
	for i, backend := range p.Backends {
		if ctx.Err() != nil {
			break
		}
		c, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: 1, Dir: dir, Args: b.args(),
			Env: b.nodeEnv("SLUICE_CACHE_BACKEND=" + backend)})
		if err != nil {
			return rows, notes, fmt.Errorf("bench: cache_backend=%s: %w", backend, err)
		}
		n := c.Nodes[0]
		if b.dbless() {
			// Each DB-less node holds its own configuration.
			t := time.Now()
			doc, err := b.throughputConfig(path)
			if err == nil {
				err = n.PostConfig(ctx, doc)
			}
			if err != nil {
				c.Stop()
				return rows, notes, fmt.Errorf("bench: setup: %w", err)
			}
			b.logf("  loaded %d consumers with key-auth credentials with POST /config (%d KiB) in %.1fs", p.Consumers, len(doc)/1024, time.Since(t).Seconds())
		} else if i == 0 {
			t := time.Now()
			if err := b.setupThroughput(ctx, n, path); err != nil {
				c.Stop()
				return rows, notes, err
			}
			b.logf("  created %d consumers with key-auth credentials through the Admin API in %.1fs", p.Consumers, time.Since(t).Seconds())
		}
		before, err1 := scrape.Get(ctx, n.StatusURL+"/metrics")
		t0 := time.Now()
		row := b.measure(ctx, "gateway", backend, n.ProxyURL+path, hdr, func() []int {
			if pid := n.Pid(); pid > 0 {
				return []int{pid}
			}
			return nil
		})
		after, err2 := scrape.Get(ctx, n.StatusURL+"/metrics")
		secs := time.Since(t0).Seconds()
		c.Stop()
		if err := errors.Join(err1, err2); err == nil {
			hits := after.Sum("sluice_cache_hits_total") - before.Sum("sluice_cache_hits_total")
			neg := after.Sum("sluice_cache_negative_hits_total") - before.Sum("sluice_cache_negative_hits_total")
			miss := after.Sum("sluice_cache_misses_total") - before.Sum("sluice_cache_misses_total")
			if hits+neg+miss > 0 {
				row.HitRatio = (hits + neg) / (hits + neg + miss)
			}
			row.DatastoreQPS = (after.Sum("sluice_datastore_query_duration_seconds_count") - before.Sum("sluice_datastore_query_duration_seconds_count")) / secs
		} else {
			notes = append(notes, fmt.Sprintf("cache_backend=%s: metrics not scraped: %v", backend, err))
		}
		rows = append(rows, row)
		b.logf("  gateway/%s: %.0f rps, %.1f CPU µs/req, hit ratio %.4f, %.1f datastore q/s, open-loop %d/s p50 %.2f p99 %.2f ms, errors %d+%d",
			backend, row.RPS, row.CPUMicrosPerRequest, row.HitRatio, row.DatastoreQPS, row.OpenRate, row.LatencyMS.P50, row.LatencyMS.P99, row.ClosedErrors, row.OpenErrors)
	}
	return rows, notes, nil
}

func (b *bench) args() []string {
	if b.opts.ConfigFile == "" {
		return nil
	}
	return []string{"-c", b.opts.ConfigFile}
}

// keyHeader draws consumer keys by Zipf (s=1.1) over n consumers, and an
// unknown key with probability unknown, so negative caching is exercised.
func keyHeader(prefix string, n int, unknown float64) load.Header {
	var zipfs sync.Map // *rand.Rand -> *rand.Zipf
	return func(rng *rand.Rand) http.Header {
		if rng.Float64() < unknown {
			return http.Header{"Apikey": {prefix + "-nokey-" + strconv.Itoa(rng.IntN(n))}}
		}
		z, ok := zipfs.Load(rng)
		if !ok {
			z, _ = zipfs.LoadOrStore(rng, rand.NewZipf(rng, 1.1, 1, uint64(n-1)))
		}
		return http.Header{"Apikey": {prefix + "-key-" + strconv.FormatUint(z.(*rand.Zipf).Uint64(), 10)}}
	}
}

// setupThroughput creates the service, route, plugins and consumers with
// Admin API requests from a pool of workers.
func (b *bench) setupThroughput(ctx context.Context, n *harness.Node, path string) error {
	svc := b.prefix + "-bench"
	steps := []struct {
		path string
		form url.Values
	}{
		{"/services", url.Values{"name": {svc}, "url": {b.upstream}}},
		{"/services/" + svc + "/routes", url.Values{"name": {svc}, "paths[]": {path}}},
		{"/services/" + svc + "/plugins", url.Values{"name": {"key-auth"}}},
		{"/services/" + svc + "/plugins", url.Values{"name": {"rate-limiting"}, "config.second": {"1000000000"}, "config.limit_by": {"consumer"}}},
	}
	for _, s := range steps {
		if _, err := n.MustAdmin(ctx, http.MethodPost, s.path, s.form, http.StatusCreated); err != nil {
			return fmt.Errorf("bench: setup: %w", err)
		}
	}
	return b.createConsumers(ctx, n, b.opts.Profile.Consumers)
}

// createConsumers creates count consumers <prefix>-u<i>, each with the
// key-auth credential <prefix>-key-<i>, from a pool of workers.
func (b *bench) createConsumers(ctx context.Context, n *harness.Node, count int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= count || ctx.Err() != nil {
					return
				}
				user := b.prefix + "-u" + strconv.Itoa(i)
				_, err := n.MustAdmin(ctx, http.MethodPost, "/consumers", url.Values{"username": {user}}, http.StatusCreated)
				if err == nil {
					_, err = n.MustAdmin(ctx, http.MethodPost, "/consumers/"+user+"/key-auth",
						url.Values{"key": {b.prefix + "-key-" + strconv.Itoa(i)}}, http.StatusCreated)
				}
				if err != nil {
					select {
					case errc <- fmt.Errorf("bench: creating consumers: %w", err):
					default:
					}
					next.Store(int64(count))
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return ctx.Err()
}
