package run

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/load"
	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// changeKinds are the soak's configuration changes on node A, in turn.
var changeKinds = []string{"route-added", "route-removed", "plugin-patched", "credential-created", "credential-revoked"}

// soakEntities are the names and ids the soak's traffic and changes use.
type soakEntities struct {
	path      string // the keyed route the traffic goes to
	rlPlugin  string // the rate-limiting plugin's id, PATCHed
	churnSvc  string // service whose routes are added and removed
	churnUser string // consumer whose credentials are created and revoked
	rateLimit int
	firstKey  string
}

// soak runs the soak profile: a cluster, consumers, capacity, then
// open-loop traffic at half of it for SoakDuration with a configuration
// change on node A every SoakChangeEvery, sampled every SoakInterval.
func (b *bench) soak(ctx context.Context) (*report.Soak, error) {
	p := b.opts.Profile
	nodes := b.opts.Nodes
	if p.SoakNodes > 0 {
		nodes = p.SoakNodes
	}
	s := &report.Soak{IntervalS: p.SoakInterval.Seconds(), Consumers: p.Consumers, UnknownShare: p.UnknownShare,
		RateLimitPerS: p.SoakRateLimit, ChangeEveryS: p.SoakChangeEvery.Seconds(), Changes: map[string]int{}}
	dir := filepath.Join(b.opts.Out, "soak")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	b.logf("soak: %d nodes, %d consumers, %v of traffic, sampled every %v, a change on node A every %v",
		nodes, p.Consumers, p.SoakDuration, p.SoakInterval, p.SoakChangeEvery)
	c, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: nodes, Dir: dir, Args: b.args(), Env: b.nodeEnv()})
	if err != nil {
		return s, fmt.Errorf("bench: soak: %w", err)
	}
	defer c.Stop()
	e, err := b.setupSoak(ctx, c.Nodes[0])
	if err != nil {
		return s, err
	}
	for _, n := range c.Nodes {
		if _, ok := probe(ctx, n, e.path, e.firstKey, http.StatusOK, time.Now(), time.Minute, time.Millisecond); !ok {
			return s, fmt.Errorf("bench: soak: setup not visible on %s within 1m", n.Name)
		}
	}
	hdr := keyHeader(b.prefix, p.Consumers, p.UnknownShare)
	s.RateRPS = p.SoakRate
	if s.RateRPS <= 0 {
		s.CapacityRPS = b.soakCapacity(ctx, c.Nodes, e.path, hdr)
		s.RateRPS = soakRate(s.CapacityRPS, p.SoakMaxRate)
		b.logf("  capacity %.0f rps (closed loop, %d conns over %d nodes, %v): soak rate %d/s (half, at most %d/s)",
			s.CapacityRPS, p.Conns, nodes, p.Closed, s.RateRPS, p.SoakMaxRate)
	}
	t0 := time.Now()
	err = b.soakTraffic(ctx, c.Nodes, e, hdr, s)
	s.DurationS = time.Since(t0).Seconds()
	s.Verdict = report.Judge(s)
	b.logf("  soak verdict: %s", s.Verdict.Summary)
	return s, err
}

// soakRate is half the capacity, at least 10/s and at most maxRate (0:
// no bound).
func soakRate(capacity float64, maxRate int) int {
	r := max(int(capacity/2), 10)
	if maxRate > 0 {
		r = min(r, maxRate)
	}
	return r
}

// setupSoak creates the keyed service with key-auth and rate-limiting,
// the consumers, and the entities the changes work on.
func (b *bench) setupSoak(ctx context.Context, a *harness.Node) (*soakEntities, error) {
	p := b.opts.Profile
	svc := b.prefix + "-soak"
	e := &soakEntities{path: "/" + svc, churnSvc: svc + "-churn", churnUser: svc + "-churn", rateLimit: p.SoakRateLimit,
		firstKey: b.prefix + "-key-0"}
	steps := []struct {
		path string
		form url.Values
		id   *string
	}{
		{"/services", url.Values{"name": {svc}, "url": {b.upstream}}, nil},
		{"/services/" + svc + "/routes", url.Values{"name": {svc}, "paths[]": {e.path}}, nil},
		{"/services/" + svc + "/plugins", url.Values{"name": {"key-auth"}}, nil},
		{"/services/" + svc + "/plugins", url.Values{"name": {"rate-limiting"}, "config.second": {strconv.Itoa(p.SoakRateLimit)},
			"config.limit_by": {"consumer"}}, &e.rlPlugin},
		{"/services", url.Values{"name": {e.churnSvc}, "url": {b.upstream}}, nil},
		{"/consumers", url.Values{"username": {e.churnUser}}, nil},
	}
	for _, st := range steps {
		body, err := a.MustAdmin(ctx, http.MethodPost, st.path, st.form, http.StatusCreated)
		if err != nil {
			return nil, fmt.Errorf("bench: soak setup: %w", err)
		}
		if st.id != nil {
			*st.id, err = entityID(body)
			if err != nil {
				return nil, fmt.Errorf("bench: soak setup: %s: %w", st.path, err)
			}
		}
	}
	t := time.Now()
	if err := b.createConsumers(ctx, a, p.Consumers); err != nil {
		return nil, err
	}
	b.logf("  created %d consumers with key-auth credentials in %.1fs", p.Consumers, time.Since(t).Seconds())
	return e, nil
}

func entityID(body []byte) (string, error) {
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", err
	}
	if m.ID == "" {
		return "", fmt.Errorf("no id in %s", body)
	}
	return m.ID, nil
}

// soakCapacity runs a warm-up then a closed loop with Conns connections
// spread over the nodes and returns their total requests/s.
func (b *bench) soakCapacity(ctx context.Context, nodes []*harness.Node, path string, hdr load.Header) float64 {
	p := b.opts.Profile
	conns := max(p.Conns/len(nodes), 1)
	run := func(d time.Duration) float64 {
		var mu sync.Mutex
		var total float64
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sum := load.Closed(ctx, load.Options{URL: n.ProxyURL + path, Header: hdr, OK: soakOK, Conns: conns, Duration: d})
				mu.Lock()
				total += sum.RPS
				mu.Unlock()
			}()
		}
		wg.Wait()
		return total
	}
	run(p.Warmup)
	return run(p.Closed)
}

// soakOK are the statuses the soak's traffic expects: 401 for unknown
// keys and 429 from rate-limiting are answers, not errors.
var soakOK = []int{http.StatusOK, http.StatusUnauthorized, http.StatusTooManyRequests}

// bucket accumulates one interval's results.
type bucket struct {
	lat                       []float64
	ok, unauth, limited, errs int
	firstErr                  string
}

func (k *bucket) add(r *vegeta.Result) {
	k.lat = append(k.lat, float64(r.Latency)/1e6)
	switch {
	case r.Code == http.StatusOK:
		k.ok++
	case r.Code == http.StatusUnauthorized:
		k.unauth++
	case r.Code == http.StatusTooManyRequests:
		k.limited++
	default:
		if k.errs == 0 {
			k.firstErr = strings.TrimSpace(fmt.Sprintf("status %d %s", r.Code, r.Error))
		}
		k.errs++
	}
}

// soakTraffic sends the open-loop traffic round-robin over the nodes,
// makes the changes and samples every interval until SoakDuration ends.
func (b *bench) soakTraffic(ctx context.Context, nodes []*harness.Node, e *soakEntities, hdr load.Header, s *report.Soak) error {
	p := b.opts.Profile
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	var tmu sync.Mutex
	next := 0
	targeter := func(t *vegeta.Target) error {
		tmu.Lock()
		defer tmu.Unlock()
		t.Method, t.URL, t.Header = http.MethodGet, nodes[next%len(nodes)].ProxyURL+e.path, hdr(rng)
		next++
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.Connections(1000))
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()

	var mu sync.Mutex
	cur := &bucket{}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for r := range atk.Attack(targeter, vegeta.Rate{Freq: s.RateRPS, Per: time.Second}, p.SoakDuration, "sluice-soak") {
			mu.Lock()
			cur.add(r)
			mu.Unlock()
		}
	}()

	var changes atomic.Int64
	cctx, cancel := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		b.soakChanges(cctx, nodes[0], e, s, &changes)
	}()
	defer func() { cancel(); cwg.Wait() }()

	prev, _ := scrapeAll(ctx, nodes)
	prevT := time.Now()
	tick := time.NewTicker(p.SoakInterval)
	defer tick.Stop()
	total := int(p.SoakDuration / p.SoakInterval)
	for last := false; !last; {
		select {
		case <-tick.C:
		case <-done:
			last = true
		case <-ctx.Done():
			last = true // interrupted: keep what was measured
		}
		mu.Lock()
		k := cur
		cur = &bucket{}
		mu.Unlock()
		now := time.Now()
		in := report.SoakInterval{TS: now.Sub(start).Seconds(), Requests: len(k.lat), OK: k.ok, Unauthorized: k.unauth,
			Limited: k.limited, Errors: k.errs, FirstError: k.firstErr, Changes: int(changes.Swap(0))}
		slices.Sort(k.lat)
		in.LatencyMS = report.Latency{P50: load.Percentile(k.lat, 50), P99: load.Percentile(k.lat, 99), Max: load.Percentile(k.lat, 100)}
		samples, _ := scrapeAll(ctx, nodes)
		for i, n := range nodes {
			var before, after scrape.Samples
			if prev != nil {
				before = prev[i]
			}
			if samples != nil {
				after = samples[i]
			}
			in.Nodes = append(in.Nodes, soakNode(n, before, after, now.Sub(prevT).Seconds()))
		}
		prev, prevT = samples, now
		if len(k.lat) == 0 && last {
			break // the attack's tail: nothing answered since the last tick
		}
		s.Intervals = append(s.Intervals, in)
		b.logf("%s", progressLine(len(s.Intervals), total, in))
	}
	return nil
}

// soakNode samples one node: RSS from /proc, the rest from /metrics
// (deltas against before, over secs).
func soakNode(n *harness.Node, before, after scrape.Samples, secs float64) report.SoakNode {
	sn := report.SoakNode{Name: n.Name}
	if pid := n.Pid(); pid > 0 {
		rss, err := procstat.RSS(pid)
		if err != nil {
			sn.Error = err.Error()
		}
		sn.RSSBytes = rss
	} else {
		sn.Error = "node not running"
	}
	if after == nil {
		sn.Error = strings.TrimPrefix(sn.Error+"; metrics not scraped", "; ")
		return sn
	}
	sn.Goroutines = after.Sum("go_goroutines")
	sn.HeapInuseBytes = after.Sum("go_memstats_heap_inuse_bytes")
	sn.OpenFDs = after.Sum("process_open_fds")
	sn.GCPauseP50MS = after[`go_gc_duration_seconds{quantile="0.5"}`] * 1000
	sn.GCPauseMaxMS = after[`go_gc_duration_seconds{quantile="1"}`] * 1000
	if before != nil && secs > 0 {
		sn.GCCount = after.Sum("go_gc_duration_seconds_count") - before.Sum("go_gc_duration_seconds_count")
		if sn.GCCount > 0 {
			sn.GCPauseMeanMS = (after.Sum("go_gc_duration_seconds_sum") - before.Sum("go_gc_duration_seconds_sum")) / sn.GCCount * 1000
		}
		q := "sluice_datastore_query_duration_seconds_count"
		sn.DatastoreQPS = (after.Sum(q) - before.Sum(q)) / secs
	}
	return sn
}

// progressLine is the stdout line of one interval.
func progressLine(i, total int, in report.SoakInterval) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  soak %d/%d t=%.0fs: %d req (401 %d, 429 %d), errors %d, p50 %.2f p99 %.2f ms, %d changes",
		i, total, in.TS, in.Requests, in.Unauthorized, in.Limited, in.Errors, in.LatencyMS.P50, in.LatencyMS.P99, in.Changes)
	for _, n := range in.Nodes {
		fmt.Fprintf(&b, "; %s RSS %.1f MiB heap %.1f MiB %.0f goroutines %.0f fds %.0f GCs (max %.2f ms) %.1f db q/s",
			n.Name, float64(n.RSSBytes)/(1<<20), n.HeapInuseBytes/(1<<20), n.Goroutines, n.OpenFDs, n.GCCount, n.GCPauseMaxMS, n.DatastoreQPS)
		if n.Error != "" {
			fmt.Fprintf(&b, " (%s)", n.Error)
		}
	}
	if in.FirstError != "" {
		fmt.Fprintf(&b, "; first error: %s", in.FirstError)
	}
	return b.String()
}

// soakChanges makes one configuration change on a every SoakChangeEvery
// until ctx ends, cycling through changeKinds. It alone writes s.Changes
// and s.ChangeErrors until it returns.
func (b *bench) soakChanges(ctx context.Context, a *harness.Node, e *soakEntities, s *report.Soak, count *atomic.Int64) {
	tick := time.NewTicker(b.opts.Profile.SoakChangeEvery)
	defer tick.Stop()
	var routeID, credID string
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		kind := changeKinds[i%len(changeKinds)]
		var body []byte
		var err error
		switch kind {
		case "route-added":
			body, err = a.MustAdmin(ctx, http.MethodPost, "/services/"+e.churnSvc+"/routes",
				url.Values{"paths[]": {fmt.Sprintf("/%s-%d", e.churnSvc, i)}}, http.StatusCreated)
			if err == nil {
				routeID, err = entityID(body)
			}
		case "route-removed":
			if routeID != "" {
				_, err = a.MustAdmin(ctx, http.MethodDelete, "/routes/"+routeID, nil, http.StatusNoContent)
				routeID = ""
			}
		case "plugin-patched":
			// Alternates the limit by one: a real change of the plugin
			// the traffic goes through, without changing what it sees.
			limit := e.rateLimit + (i/len(changeKinds))%2
			_, err = a.MustAdmin(ctx, http.MethodPatch, "/plugins/"+e.rlPlugin,
				url.Values{"config.second": {strconv.Itoa(limit)}}, http.StatusOK)
		case "credential-created":
			body, err = a.MustAdmin(ctx, http.MethodPost, "/consumers/"+e.churnUser+"/key-auth",
				url.Values{"key": {fmt.Sprintf("%s-churnkey-%d", e.churnUser, i)}}, http.StatusCreated)
			if err == nil {
				credID, err = entityID(body)
			}
		case "credential-revoked":
			if credID != "" {
				_, err = a.MustAdmin(ctx, http.MethodDelete, "/consumers/"+e.churnUser+"/key-auth/"+credID, nil, http.StatusNoContent)
				credID = ""
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if s.ChangeErrors == 0 {
				b.logf("  soak: change %s failed: %v", kind, err)
			}
			s.ChangeErrors++
		} else {
			s.Changes[kind]++
			count.Add(1)
		}
	}
}
