package run

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
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

// consistency runs the sweep: per setting a fresh cluster, changes on
// node A, each probed on one other node.
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
		w := row.Window
		line := fmt.Sprintf("  db_update_frequency=%gs push=%s: %d windows (%d missed, %d cold), p50 %.0f ms, max %.0f ms",
			s.freq, onOff(s.push), w.N, row.Missed, row.Cold, w.P50, w.Max)
		if w.P99Upper != nil {
			line += fmt.Sprintf(", p99 <= %.0f ms at 95 %%", *w.P99Upper)
		}
		if m := row.Model; m != nil {
			line += fmt.Sprintf("; model p50 %.0f ms, KS D %.3f p %.3g", m.P50, m.KSD, m.KSP)
		}
		b.logf("%s; node lag p50 %.0f ms over %.0f events; %.2f polls/s/node; %.0f rps", line, row.NodeLag.P50, row.NodeLag.Count, row.PollsPerSecPerNode, row.RPS)
	}
	return rows, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// The kinds of change, made in turn.
const (
	routeCreated      = "route-created"
	pluginAdded       = "plugin-added"
	serviceDeleted    = "service-deleted"
	credentialRevoked = "credential-revoked"
)

var sweepKinds = []string{routeCreated, pluginAdded, serviceDeleted, credentialRevoked}

// change is one change of the sweep: its entities, the node that probes it
// and when node A makes it.
type change struct {
	kind string
	node *harness.Node
	// at is the write's offset from the start of the change phase.
	at time.Duration
	// path and key are the probe's request; before and after the status
	// it answers before and after the change.
	path, key     string
	before, after int
	// route, service and credential are the ids the change acts on.
	route, service, credential string
}

// cluster is one setting's running nodes and shared entities.
type cluster struct {
	a      *harness.Node
	others []*harness.Node
	// svc is the service new routes attach to, basePath its route;
	// consumer (consumerID) owns every credential; keyPath is the key-auth
	// route.
	svc, consumer, consumerID, keyPath, basePath string
}

func (b *bench) setting(ctx context.Context, idx int, s setting) (report.Consistency, error) {
	p := b.opts.Profile
	row := report.Consistency{DBUpdateFrequencyS: s.freq, Push: s.push}
	freq := time.Duration(s.freq * float64(time.Second))
	// The write times are drawn over a whole number of poll intervals, so
	// that every phase of a node's poll cycle is equally likely.
	span := time.Duration(math.Ceil(float64(p.ChangeSpan)/float64(freq))) * freq
	every := max(freq/100, time.Millisecond)
	row.SpanS, row.ProbeMS = span.Seconds(), float64(every)/1e6
	b.logf("consistency: db_update_frequency=%gs push=%s, %d nodes, %d changes over %v, each probed on one node every %v",
		s.freq, onOff(s.push), b.opts.Nodes, p.Changes, span, every)
	dir := filepath.Join(b.opts.Out, fmt.Sprintf("consistency-%gs-push-%s", s.freq, onOff(s.push)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return row, fmt.Errorf("bench: %w", err)
	}
	// Node A first: the others start once the setup is written and load
	// it at start.
	hc, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: 1, Dir: dir, Args: b.args(),
		Env: b.nodeEnv("SLUICE_DB_UPDATE_FREQUENCY="+strconv.FormatFloat(s.freq, 'g', -1, 64), "SLUICE_DB_UPDATE_PUSH="+onOff(s.push))})
	if err != nil {
		return row, fmt.Errorf("bench: db_update_frequency=%g: %w", s.freq, err)
	}
	defer hc.Stop()
	// The probes' idle keep-alive connections would hold up the nodes'
	// shutdown.
	defer probeClient.CloseIdleConnections()
	c := &cluster{a: hc.Nodes[0]}
	rng := rand.New(rand.NewPCG(uint64(idx), uint64(time.Now().UnixNano())))
	changes, err := c.prepare(ctx, fmt.Sprintf("%s-s%d", b.prefix, idx), b.upstream, p.Changes, span, rng)
	if err != nil {
		return row, fmt.Errorf("bench: db_update_frequency=%g: setup: %w", s.freq, err)
	}
	if err := hc.Add(ctx, b.opts.Nodes-1); err != nil {
		return row, fmt.Errorf("bench: db_update_frequency=%g: %w", s.freq, err)
	}
	c.others = hc.Nodes[1:]
	for i := range changes {
		changes[i].node = c.others[i%len(c.others)]
	}
	// The closed loop on a probed node runs while the nodes wait for
	// their first poll.
	if p.SettingRPS > 0 && ctx.Err() == nil {
		sum := load.Closed(ctx, load.Options{URL: c.others[0].ProxyURL + c.basePath, Conns: p.Conns, Duration: p.SettingRPS})
		row.RPS = sum.RPS
	}
	// A node's first poll re-reads the grace window before its start and
	// applies the setup's events, purging what was warmed meanwhile: warm
	// after it.
	if err := firstPoll(ctx, c.others, freq+10*time.Second); err != nil {
		return row, fmt.Errorf("bench: db_update_frequency=%g: %w", s.freq, err)
	}
	warmLimit := 10 * time.Second
	if err := c.warm(ctx, changes, warmLimit); err != nil {
		return row, fmt.Errorf("bench: db_update_frequency=%g: %w", s.freq, err)
	}
	b.logf("  %d changes' entities warm in their probed node's cache", len(changes))

	before, err := scrapeAll(ctx, c.others)
	if err != nil {
		return row, err
	}
	t0 := time.Now()
	windows, err := c.run(ctx, changes, every, 2*freq+5*time.Second, &row, fmt.Sprintf("%gs push=%s", s.freq, onOff(s.push)), b.logf)
	if err != nil {
		return row, fmt.Errorf("bench: db_update_frequency=%g: %w", s.freq, err)
	}
	elapsed := time.Since(t0)
	after, err := scrapeAll(ctx, c.others)
	if err != nil {
		return row, err
	}
	row.ByChange = map[string]report.Summary{}
	for kind, w := range windows {
		row.ByChange[kind] = report.Summarize(w)
		row.Windows = append(row.Windows, w...)
	}
	slices.Sort(row.Windows)
	row.Window = report.Summarize(row.Windows)
	d := nodeDeltas(before, after)
	if !s.push {
		row.Model = report.UniformModel(row.Windows, float64(freq)/1e6, d.applyMS+row.ProbeMS/2)
	}
	row.NodeLag = d.lag
	row.PollsPerSecPerNode = d.polls / float64(len(c.others)) / elapsed.Seconds()
	row.RowsPerSecPerNode = d.applied / float64(len(c.others)) / elapsed.Seconds()
	return row, nil
}

// prepare creates the shared entities and those of n changes on node A,
// and plans the changes: kinds in turn, write times drawn uniformly and
// independently over span. The caller assigns the probed nodes.
func (c *cluster) prepare(ctx context.Context, pre, upstream string, n int, span time.Duration, rng *rand.Rand) ([]change, error) {
	a := c.a
	post := func(path string, form url.Values) (string, error) {
		body, err := a.MustAdmin(ctx, http.MethodPost, path, form, http.StatusCreated)
		if err != nil {
			return "", err
		}
		var m struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return m.ID, nil
	}
	c.svc, c.consumer = pre+"-svc", pre+"-con"
	c.basePath, c.keyPath = "/"+pre+"-base", "/"+pre+"-keyed"
	setup := []struct {
		path string
		form url.Values
	}{
		{"/services", url.Values{"name": {c.svc}, "url": {upstream}}},
		{"/services/" + c.svc + "/routes", url.Values{"paths[]": {c.basePath}}},
		{"/services", url.Values{"name": {c.svc + "-keyed"}, "url": {upstream}}},
		{"/services/" + c.svc + "-keyed/routes", url.Values{"paths[]": {c.keyPath}}},
		{"/services/" + c.svc + "-keyed/plugins", url.Values{"name": {"key-auth"}}},
	}
	for _, st := range setup {
		if _, err := post(st.path, st.form); err != nil {
			return nil, err
		}
	}
	var err error
	if c.consumerID, err = post("/consumers", url.Values{"username": {c.consumer}}); err != nil {
		return nil, err
	}
	changes := make([]change, n)
	for i := range changes {
		ch := &changes[i]
		r := fmt.Sprintf("%s-c%d", pre, i)
		ch.kind = sweepKinds[i%len(sweepKinds)]
		ch.at = time.Duration(rng.Float64() * float64(span))
		switch ch.kind {
		case routeCreated:
			ch.path, ch.before, ch.after = "/"+r+"-new", http.StatusNotFound, http.StatusOK
		case pluginAdded:
			ch.path, ch.before, ch.after = "/"+r+"-plug", http.StatusOK, http.StatusTeapot
			ch.route, err = post("/services/"+c.svc+"/routes", url.Values{"paths[]": {ch.path}})
		case serviceDeleted:
			ch.path, ch.before, ch.after, ch.service = "/"+r+"-del", http.StatusOK, http.StatusNotFound, r+"-del"
			if _, err = post("/services", url.Values{"name": {ch.service}, "url": {upstream}}); err == nil {
				ch.route, err = post("/services/"+ch.service+"/routes", url.Values{"paths[]": {ch.path}})
			}
		case credentialRevoked:
			ch.path, ch.key, ch.before, ch.after = c.keyPath, r+"-key", http.StatusOK, http.StatusUnauthorized
			ch.credential, err = post("/consumers/"+c.consumer+"/key-auth", url.Values{"key": {ch.key}})
		}
		if err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// warm brings every change's entities into its probed node's cache: the
// node must answer the change's request with the status from before it
// (its snapshot holds the route, service and plugins), and, for a
// credential, have answered it from the entity cache. The nodes started
// after the setup was written; limit bounds the wait all the same.
func (c *cluster) warm(ctx context.Context, changes []change, limit time.Duration) error {
	start := time.Now()
	for _, n := range c.others {
		// The key-auth route refuses a request without a key once the
		// node has its plugin; before that a credential request would
		// pass without reaching the cache.
		if _, ok := probe(ctx, n, c.keyPath, "", http.StatusUnauthorized, start, limit, 10*time.Millisecond); !ok {
			return fmt.Errorf("setup: key-auth on %s not in force within %v", n.Name, limit)
		}
	}
	for i := range changes {
		ch := &changes[i]
		if _, ok := probe(ctx, ch.node, ch.path, ch.key, ch.before, start, limit, 10*time.Millisecond); !ok {
			return fmt.Errorf("setup: %s %s did not answer %d on %s within %v", ch.kind, ch.path, ch.before, ch.node.Name, limit)
		}
	}
	for i := range changes {
		if err := c.verifyWarm(ctx, &changes[i]); err != nil {
			return err
		}
	}
	return nil
}

// verifyWarm checks, just before a change, that its probed node holds its
// entities: the request answers the status from before the change (the
// node's snapshot has the route, service and plugins as they are), and a
// credential and its consumer are in the node's entity cache (Admin API
// GET /cache/{key}).
func (c *cluster) verifyWarm(ctx context.Context, ch *change) error {
	header := http.Header{}
	if ch.key != "" {
		header.Set("Apikey", ch.key)
	}
	status, _, err := ch.node.Get(ctx, ch.path, header)
	if err != nil {
		return fmt.Errorf("warm check: %w", err)
	}
	if status != ch.before {
		return fmt.Errorf("warm check: %s %s on %s answered %d, want %d", ch.kind, ch.path, ch.node.Name, status, ch.before)
	}
	if ch.kind != credentialRevoked {
		return nil
	}
	for _, key := range []string{"keyauth_credentials:" + ch.key, "consumers:" + c.consumerID} {
		if _, err := ch.node.MustAdmin(ctx, http.MethodGet, "/cache/"+key, nil, http.StatusOK); err != nil {
			return fmt.Errorf("warm check: %s not cached: %w", key, err)
		}
	}
	return nil
}

// run makes the changes on node A at their times, each after checking its
// entities warm on its probed node (a change found cold is counted, not
// made), and probes that node every period until it shows the change (or
// limit passes). It returns the windows (ms) by kind, counts missed and
// cold changes in row and summarizes there the writes' latency on node A;
// it logs progress every few seconds.
func (c *cluster) run(ctx context.Context, changes []change, every, limit time.Duration, row *report.Consistency, label string, logf func(format string, args ...any)) (map[string][]float64, error) {
	a := c.a
	var (
		mu             sync.Mutex
		windows        = map[string][]float64{}
		errs           []error
		writes         []float64
		made, measured int
	)
	progress := func(made, measured int) {
		logf("  %s: %d/%d changes made, %d windows measured", label, made, len(changes), measured)
	}
	order := slices.Clone(changes)
	slices.SortFunc(order, func(x, y change) int { return cmp.Compare(x.at, y.at) })
	t0 := time.Now()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var wg sync.WaitGroup
	for _, ch := range order {
		for wait := time.Until(t0.Add(ch.at)); wait > 0; wait = time.Until(t0.Add(ch.at)) {
			select {
			case <-time.After(wait):
			case <-tick.C:
				mu.Lock()
				progress(made, measured)
				mu.Unlock()
			case <-ctx.Done():
				wg.Wait()
				return windows, ctx.Err()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.verifyWarm(ctx, &ch); err != nil {
				mu.Lock()
				row.Cold++
				if row.Cold == 1 {
					logf("  %s: a change found cold, not made (counted cold): %v", label, err)
				}
				mu.Unlock()
				return
			}
			sent := time.Now()
			err := c.do(ctx, a, ch)
			start := time.Now()
			mu.Lock()
			made++
			row.Warm++
			writes = append(writes, float64(start.Sub(sent))/1e6)
			mu.Unlock()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("change on %s: %w", a.Name, err))
				mu.Unlock()
				return
			}
			var follow sync.WaitGroup
			if ch.kind == serviceDeleted {
				// A service with routes cannot be deleted (Kong): its
				// route went first, in a write of its own, and the
				// window started when that returned; the service goes
				// while the probe runs.
				follow.Go(func() {
					if _, err := a.MustAdmin(ctx, http.MethodDelete, "/services/"+ch.service, nil, http.StatusNoContent); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("change on %s: %w", a.Name, err))
						mu.Unlock()
					}
				})
			}
			defer follow.Wait()
			w, ok := probe(ctx, ch.node, ch.path, ch.key, ch.after, start, limit, every)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				row.Missed++
				return
			}
			measured++
			windows[ch.kind] = append(windows[ch.kind], float64(w)/1e6)
		}()
	}
	wg.Wait()
	progress(made, measured)
	row.Write = report.Summarize(writes)
	if len(errs) > 0 {
		return windows, errors.Join(errs...)
	}
	return windows, ctx.Err()
}

// do makes ch on node A and returns when its write returned.
func (c *cluster) do(ctx context.Context, a *harness.Node, ch change) error {
	var err error
	switch ch.kind {
	case routeCreated:
		_, err = a.MustAdmin(ctx, http.MethodPost, "/services/"+c.svc+"/routes", url.Values{"paths[]": {ch.path}}, http.StatusCreated)
	case pluginAdded:
		_, err = a.MustAdmin(ctx, http.MethodPost, "/routes/"+ch.route+"/plugins",
			url.Values{"name": {"request-termination"}, "config.status_code": {"418"}}, http.StatusCreated)
	case serviceDeleted:
		_, err = a.MustAdmin(ctx, http.MethodDelete, "/routes/"+ch.route, nil, http.StatusNoContent)
	case credentialRevoked:
		_, err = a.MustAdmin(ctx, http.MethodDelete, "/consumers/"+c.consumer+"/key-auth/"+ch.credential, nil, http.StatusNoContent)
	}
	return err
}

// firstPoll waits until every node has finished a poll for cluster
// events, at most limit.
func firstPoll(ctx context.Context, nodes []*harness.Node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, n := range nodes {
		for {
			m, err := scrape.Get(ctx, n.StatusURL+"/metrics")
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			if m.Sum("sluice_cluster_poll_duration_seconds_count") >= 1 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s has not polled for cluster events within %v", n.Name, limit)
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// deltas are what the probed nodes' metrics say about the change phase.
type deltas struct {
	polls, applied float64
	// applyMS is the mean poll query plus the mean snapshot update (an
	// incremental apply or a full rebuild).
	applyMS float64
	lag     report.NodeLag
}

func nodeDeltas(before, after []scrape.Samples) deltas {
	var d deltas
	var lagA, lagB []scrape.Bucket
	var pollSum, rebuilds, rebuildSum float64
	for i := range after {
		diff := func(name string) float64 { return after[i].Sum(name) - before[i].Sum(name) }
		d.polls += diff("sluice_cluster_poll_duration_seconds_count")
		pollSum += diff("sluice_cluster_poll_duration_seconds_sum")
		d.applied += diff("sluice_cluster_events_applied_total")
		rebuilds += diff("sluice_snapshot_rebuild_duration_seconds_count") + diff("sluice_snapshot_apply_duration_seconds_count")
		rebuildSum += diff("sluice_snapshot_rebuild_duration_seconds_sum") + diff("sluice_snapshot_apply_duration_seconds_sum")
		lagA = scrape.Add(lagA, after[i].Histogram("sluice_invalidation_lag_seconds"))
		lagB = scrape.Add(lagB, before[i].Histogram("sluice_invalidation_lag_seconds"))
	}
	if d.polls > 0 {
		d.applyMS += pollSum / d.polls * 1000
	}
	if rebuilds > 0 {
		d.applyMS += rebuildSum / rebuilds * 1000
	}
	d.lag = report.NodeLagFrom(scrape.Sub(lagA, lagB))
	return d
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

var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// probe asks n for path every period until it answers want, and returns
// the time from start to the send of the first such request.
func probe(ctx context.Context, n *harness.Node, path, key string, want int, start time.Time, limit, every time.Duration) (time.Duration, bool) {
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
		time.Sleep(time.Until(sent.Add(every)))
	}
	return 0, false
}
