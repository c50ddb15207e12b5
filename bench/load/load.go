// Package load generates HTTP load against one loopback target: a
// closed loop (fixed number of connections, as fast as they go) for
// maximum throughput, and an open loop (fixed arrival rate, vegeta) for
// latency without coordinated omission.
package load

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Header returns the headers of one request, drawn with rng (nil means
// no extra headers).
type Header func(rng *rand.Rand) http.Header

// Summary is the outcome of one load run.
type Summary struct {
	Requests int `json:"requests"`
	// Errors counts transport errors and statuses not in the run's OK set.
	Errors   int           `json:"errors"`
	Duration time.Duration `json:"duration_ns"`
	RPS      float64       `json:"rps"`
	// Latency holds p50, p90, p99, p99.9 and max in milliseconds.
	Latency Latency `json:"latency_ms"`
	// FirstError describes the first error, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
	// Samples holds every latency in milliseconds, sorted (for Merge).
	Samples []float64 `json:"-"`
}

// Merge summarizes several runs as one: their requests pooled, their
// durations added.
func Merge(sums ...Summary) Summary {
	var lat []float64
	var errs int
	var d time.Duration
	first := ""
	for _, s := range sums {
		lat = append(lat, s.Samples...)
		errs += s.Errors
		d += s.Duration
		if first == "" {
			first = s.FirstError
		}
	}
	m := summarize(lat, errs, d)
	m.FirstError = first
	return m
}

// Latency is a set of latency percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Options describes one run.
type Options struct {
	URL      string
	Header   Header
	Duration time.Duration
	// OK lists the statuses that count as success; empty means 200.
	OK []int
	// Conns is the closed loop's concurrency.
	Conns int
	// Rate is the open loop's requests per second.
	Rate int
}

func (o Options) ok(code int) bool {
	if len(o.OK) == 0 {
		return code == http.StatusOK
	}
	return slices.Contains(o.OK, code)
}

// Closed runs o.Conns workers that each send a request as soon as the
// previous one is answered, for o.Duration or until ctx ends.
func Closed(ctx context.Context, o Options) Summary {
	tr := &http.Transport{MaxIdleConnsPerHost: o.Conns, MaxIdleConns: o.Conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var mu sync.Mutex
	var all []float64
	errs := 0
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			lat := make([]float64, 0, 4096)
			bad := 0
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
				if o.Header != nil {
					for k, v := range o.Header(rng) {
						req.Header[k] = v
					}
				}
				t := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if ctx.Err() != nil {
					break // cut off by the end of the run: not a sample
				}
				lat = append(lat, float64(time.Since(t))/1e6)
				if err != nil || !o.ok(resp.StatusCode) {
					bad++
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(all, errs, time.Since(start))
}

// Open sends o.Rate requests per second for o.Duration with vegeta, whose
// workers send each request at its scheduled time whatever the previous
// ones do, so slow answers cannot hide queueing.
func Open(ctx context.Context, o Options) Summary {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var mu sync.Mutex
	targeter := func(t *vegeta.Target) error {
		t.Method, t.URL = http.MethodGet, o.URL
		t.Header = nil
		if o.Header != nil {
			mu.Lock()
			t.Header = o.Header(rng)
			mu.Unlock()
		}
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.Connections(1000))
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	start := time.Now()
	var lat []float64
	errs, first := 0, ""
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: o.Rate, Per: time.Second}, o.Duration, "sluice-bench") {
		lat = append(lat, float64(res.Latency)/1e6)
		if (res.Code == 0 && res.Error != "") || !o.ok(int(res.Code)) {
			if errs == 0 {
				first = fmt.Sprintf("status %d %s", res.Code, res.Error)
			}
			errs++
		}
	}
	s := summarize(lat, errs, time.Since(start))
	s.FirstError = first
	return s
}

func summarize(lat []float64, errs int, d time.Duration) Summary {
	slices.Sort(lat)
	s := Summary{Requests: len(lat), Errors: errs, Duration: d, Samples: lat}
	if d > 0 {
		s.RPS = float64(len(lat)) / d.Seconds()
	}
	s.Latency = Latency{
		P50: Percentile(lat, 50), P90: Percentile(lat, 90), P99: Percentile(lat, 99),
		P999: Percentile(lat, 99.9), Max: Percentile(lat, 100),
	}
	return s
}

// Percentile returns the p-th percentile (0..100) of sorted by the
// nearest-rank method, or 0 for no samples.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(float64(n)*p/100 + 0.9999999)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}
