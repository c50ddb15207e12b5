package run

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/load"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// setting is one point of the sweep.
type setting struct {
	freq float64
	push bool
}

// consistency runs the sweep: per setting a fresh cluster, rounds of
// changes on node A, probes on every other node.
func (b *bench) consistency(ctx context.Context) ([]report.Consistency, error) {
	var settings []setting
	for _, f := range b.opts.Profile.Frequencies {
		settings = append(settings, setting{freq: f})
		if b.opts.Database == "postgres" {
			settings = append(settings, setting{freq: f, push: true})
		}
	}
	var rows []report.Consistency
	for i, s := range settings {
		if ctx.Err() != nil {
			break
		}
		row, err := b.setting(ctx, i, s)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
		b.logf("  db_update_frequency=%gs push=%s: window p50 %.0f p99 %.0f max %.0f ms over %d samples (%d missed); node lag p50 %.0f p99 %.0f ms; %.2f polls/s/node; %.0f rps",
			s.freq, onOff(s.push), row.WindowMS.P50, row.WindowMS.P99, row.WindowMS.Max, row.Samples, row.Missed,
			row.NodeLagMS.P50, row.NodeLagMS.P99, row.PollsPerSecPerNode, row.RPS)
	}
	return rows, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// change is one kind of change and what the other nodes must show.
type change struct {
	kind string
	// do makes the change on node A and returns when its write returned.
	do func(ctx context.Context) error
	// path, key and want describe the probe.
	path, key string
	want      int
}

// roundEntities are the entities prepared for one round.
type roundEntities struct {
	plugRoute, delRoute, delService, credID, key string
	newPath, plugPath, delPath                   string
}

func (b *bench) setting(ctx context.Context, idx int, s setting) (report.Consistency, error) {
	p := b.opts.Profile
	row := report.Consistency{DBUpdateFrequencyS: s.freq, Push: s.push, ByChange: map[string]report.Latency{}}
	freq := time.Duration(s.freq * float64(time.Second))
	rounds := int(float64(p.RoundsBudget) / (1.5 * float64(freq)))
	rounds = min(max(rounds, p.MinRounds), p.MaxRounds)
	b.logf("consistency: db_update_frequency=%gs push=%s, %d nodes, %d rounds of 4 changes", s.freq, onOff(s.push), b.opts.Nodes, rounds)
	dir := filepath.Join(b.opts.Out, fmt.Sprintf("consistency-%gs-push-%s", s.freq, onOff(s.push)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return row, fmt.Errorf("bench: %w", err)
	}
	c, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: b.opts.Nodes, Dir: dir, Args: b.args(),
		Env: b.nodeEnv("SLUICE_DB_UPDATE_FREQUENCY="+strconv.FormatFloat(s.freq, 'g', -1, 64), "SLUICE_DB_UPDATE_PUSH="+onOff(s.push))})
	if err != nil {
		return row, fmt.Errorf("bench: db_update_frequency=%g: %w", s.freq, err)
	}
	defer c.Stop()
	a, others := c.Nodes[0], c.Nodes[1:]
	pre := fmt.Sprintf("%s-s%d", b.prefix, idx)
	svc, consumer := pre+"-svc", pre+"-con"
	basePath, keyPath := "/"+pre+"-base", "/"+pre+"-keyed"

	// Shared entities, then every round's entities, all before the first
	// round; wait until every node shows them.
	post := func(path string, form url.Values) (map[string]any, error) {
		body, err := a.MustAdmin(ctx, http.MethodPost, path, form, http.StatusCreated)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(body, &m)
	}
	setup := []struct {
		path string
		form url.Values
	}{
		{"/services", url.Values{"name": {svc}, "url": {b.upstream}}},
		{"/services/" + svc + "/routes", url.Values{"paths[]": {basePath}}},
		{"/services", url.Values{"name": {svc + "-keyed"}, "url": {b.upstream}}},
		{"/services/" + svc + "-keyed/routes", url.Values{"paths[]": {keyPath}}},
		{"/services/" + svc + "-keyed/plugins", url.Values{"name": {"key-auth"}}},
		{"/consumers", url.Values{"username": {consumer}}},
	}
	for _, st := range setup {
		if _, err := post(st.path, st.form); err != nil {
			return row, fmt.Errorf("bench: setup: %w", err)
		}
	}
	ents := make([]roundEntities, rounds)
	for i := range ents {
		e := &ents[i]
		r := fmt.Sprintf("%s-r%d", pre, i)
		e.newPath, e.plugPath, e.delPath, e.key = "/"+r+"-new", "/"+r+"-plug", "/"+r+"-del", r+"-key"
		m, err := post("/services/"+svc+"/routes", url.Values{"paths[]": {e.plugPath}})
		if err != nil {
			return row, fmt.Errorf("bench: setup: %w", err)
		}
		e.plugRoute, _ = m["id"].(string)
		e.delService = r + "-del"
		if _, err := post("/services", url.Values{"name": {e.delService}, "url": {b.upstream}}); err != nil {
			return row, fmt.Errorf("bench: setup: %w", err)
		}
		if m, err = post("/services/"+e.delService+"/routes", url.Values{"paths[]": {e.delPath}}); err != nil {
			return row, fmt.Errorf("bench: setup: %w", err)
		}
		e.delRoute, _ = m["id"].(string)
		if m, err = post("/consumers/"+consumer+"/key-auth", url.Values{"key": {e.key}}); err != nil {
			return row, fmt.Errorf("bench: setup: %w", err)
		}
		e.credID, _ = m["id"].(string)
	}
	setupLimit := 3*freq + 10*time.Second
	last := ents[rounds-1]
	for _, n := range others {
		for _, pr := range []struct {
			path, key string
			want      int
		}{{last.plugPath, "", 200}, {last.delPath, "", 200}, {keyPath, last.key, 200}} {
			if _, ok := probe(ctx, n, pr.path, pr.key, pr.want, time.Now(), setupLimit); !ok {
				return row, fmt.Errorf("bench: setup not visible on %s within %v (db_update_frequency=%g)", n.Name, setupLimit, s.freq)
			}
		}
	}

	before, err := scrapeAll(ctx, c.Nodes)
	if err != nil {
		return row, err
	}
	t0 := time.Now()
	limit := 2*freq + 5*time.Second
	byKind := map[string][]float64{}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(uint64(idx), uint64(t0.UnixNano())))
	for i := 0; i < rounds && ctx.Err() == nil; i++ {
		// A random offset decorrelates the writes from the poll phase.
		select {
		case <-time.After(time.Duration(rng.Float64() * float64(freq))):
		case <-ctx.Done():
		}
		e := ents[i]
		changes := []change{
			{kind: "route-created", path: e.newPath, want: 200, do: func(ctx context.Context) error {
				_, err := a.MustAdmin(ctx, http.MethodPost, "/services/"+svc+"/routes", url.Values{"paths[]": {e.newPath}}, http.StatusCreated)
				return err
			}},
			{kind: "plugin-added", path: e.plugPath, want: 418, do: func(ctx context.Context) error {
				_, err := a.MustAdmin(ctx, http.MethodPost, "/routes/"+e.plugRoute+"/plugins",
					url.Values{"name": {"request-termination"}, "config.status_code": {"418"}}, http.StatusCreated)
				return err
			}},
			{kind: "service-deleted", path: e.delPath, want: 404, do: func(ctx context.Context) error {
				// A service with routes cannot be deleted (Kong): its
				// route goes first, in a write of its own; the window
				// starts when the route's delete returned.
				_, err := a.MustAdmin(ctx, http.MethodDelete, "/routes/"+e.delRoute, nil, http.StatusNoContent)
				return err
			}},
			{kind: "credential-revoked", path: keyPath, key: e.key, want: 401, do: func(ctx context.Context) error {
				_, err := a.MustAdmin(ctx, http.MethodDelete, "/consumers/"+consumer+"/key-auth/"+e.credID, nil, http.StatusNoContent)
				return err
			}},
		}
		var wg sync.WaitGroup
		errc := make(chan error, len(changes))
		for _, ch := range changes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := ch.do(ctx); err != nil {
					errc <- err
					return
				}
				start := time.Now()
				var pw sync.WaitGroup
				for _, n := range others {
					pw.Add(1)
					go func() {
						defer pw.Done()
						w, ok := probe(ctx, n, ch.path, ch.key, ch.want, start, limit)
						mu.Lock()
						defer mu.Unlock()
						if !ok {
							row.Missed++
							return
						}
						byKind[ch.kind] = append(byKind[ch.kind], float64(w)/1e6)
					}()
				}
				if ch.kind == "service-deleted" {
					if _, err := a.MustAdmin(ctx, http.MethodDelete, "/services/"+e.delService, nil, http.StatusNoContent); err != nil {
						errc <- err
					}
				}
				pw.Wait()
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return row, fmt.Errorf("bench: change on %s: %w", a.Name, err)
		}
	}
	elapsed := time.Since(t0)
	after, err := scrapeAll(ctx, c.Nodes)
	if err != nil {
		return row, err
	}
	for kind, w := range byKind {
		slices.Sort(w)
		row.ByChange[kind] = window(w)
		row.Windows = append(row.Windows, w...)
	}
	slices.Sort(row.Windows)
	row.WindowMS, row.Samples = window(row.Windows), len(row.Windows)

	var lagB, lagA []scrape.Bucket
	var polls, applied float64
	for i := range c.Nodes {
		polls += after[i].Sum("sluice_cluster_poll_duration_seconds_count") - before[i].Sum("sluice_cluster_poll_duration_seconds_count")
		if i == 0 {
			continue // node A applies its own events at once
		}
		applied += after[i].Sum("sluice_cluster_events_applied_total") - before[i].Sum("sluice_cluster_events_applied_total")
		lagA = addBuckets(lagA, after[i].Histogram("sluice_invalidation_lag_seconds"))
		lagB = addBuckets(lagB, before[i].Histogram("sluice_invalidation_lag_seconds"))
	}
	lag := scrape.Sub(lagA, lagB)
	row.NodeLagMS = report.Latency{P50: nanToZero(scrape.Quantile(lag, 0.5) * 1000), P99: nanToZero(scrape.Quantile(lag, 0.99) * 1000), Max: nanToZero(scrape.Quantile(lag, 1) * 1000)}
	row.PollsPerSecPerNode = polls / float64(len(c.Nodes)) / elapsed.Seconds()
	row.RowsPerSecPerNode = applied / float64(len(others)) / elapsed.Seconds()

	if p.SettingRPS > 0 && ctx.Err() == nil {
		sum := load.Closed(ctx, load.Options{URL: others[0].ProxyURL + basePath, Conns: p.Conns, Duration: p.SettingRPS})
		row.RPS = sum.RPS
	}
	return row, nil
}

func nanToZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func window(sorted []float64) report.Latency {
	return report.Latency{P50: load.Percentile(sorted, 50), P90: load.Percentile(sorted, 90),
		P99: load.Percentile(sorted, 99), Max: load.Percentile(sorted, 100)}
}

func addBuckets(sum, b []scrape.Bucket) []scrape.Bucket {
	if sum == nil {
		return slices.Clone(b)
	}
	for i := range sum {
		for _, o := range b {
			if o.LE == sum[i].LE {
				sum[i].Count += o.Count
			}
		}
	}
	return sum
}

func scrapeAll(ctx context.Context, nodes []*harness.Node) ([]scrape.Samples, error) {
	out := make([]scrape.Samples, len(nodes))
	for i, n := range nodes {
		s, err := scrape.Get(ctx, n.StatusURL+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", n.Name, err)
		}
		out[i] = s
	}
	return out, nil
}

var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// probe asks n for path every millisecond until it answers want, and
// returns the time from start to the send of the first such request.
func probe(ctx context.Context, n *harness.Node, path, key string, want int, start time.Time, limit time.Duration) (time.Duration, bool) {
	for time.Since(start) < limit && ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.ProxyURL+path, nil)
		if key != "" {
			req.Header.Set("Apikey", key)
		}
		sent := time.Now()
		resp, err := probeClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return max(sent.Sub(start), 0), true
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, false
}
