package cluster

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
)

// LoadOptions is the optional open-loop run through the load balancer.
type LoadOptions struct {
	// Rate is requests per second; 0 means no load.
	Rate     int
	Duration time.Duration
	// Path is appended to the load balancer's URL.
	Path   string
	Header http.Header
	// MaxInFlight bounds outstanding requests (0 means 10,000); a request
	// due while that many are outstanding is sent as soon as one returns,
	// and counted as late.
	MaxInFlight int
}

// openLoop sends o.Rate requests per second to url for o.Duration. Each
// request has an intended send time on a fixed schedule, and its latency
// is measured from that time, not from when it was actually sent, so a
// stalled server cannot hide the requests that queued behind it
// (coordinated omission).
func openLoop(ctx context.Context, client *http.Client, url string, o LoadOptions) *report.ClusterLoad {
	limit := o.MaxInFlight
	if limit <= 0 {
		limit = 10000
	}
	res := &report.ClusterLoad{URL: url, Rate: o.Rate, DurationS: o.Duration.Seconds(), ByStatus: map[string]int{}}
	slots := make(chan struct{}, limit)
	var mu sync.Mutex
	var lat []float64
	var wg sync.WaitGroup
	every := time.Second / time.Duration(o.Rate)
	start := time.Now()
	n := int(o.Duration / every)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		intended := start.Add(time.Duration(i) * every)
		if d := time.Until(intended); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		late := false
		select {
		case slots <- struct{}{}:
		default:
			late = true
			slots <- struct{}{}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			code := send(ctx, client, url, o.Header)
			took := float64(time.Since(intended)) / 1e6
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, took)
			res.Requests++
			if late {
				res.Late++
			}
			key := strconv.Itoa(code)
			if code == 0 {
				key = "transport error"
			}
			res.ByStatus[key]++
			if code == 0 || code >= 500 {
				res.Errors++
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) > 0 {
		res.LatencyMS = report.Latency{P50: rank(lat, 0.5), P90: rank(lat, 0.9), P99: rank(lat, 0.99), P999: rank(lat, 0.999), Max: lat[len(lat)-1]}
	}
	return res
}

func send(ctx context.Context, client *http.Client, url string, h http.Header) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
