package cluster

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// change is one kind of canary change and what a node shows before and
// after it.
type change struct {
	kind string
	// do makes the change on the writer and returns when its write was
	// answered: the window starts then.
	do             func(ctx context.Context) error
	path, key      string
	before, wanted int
}

// prober sends the probes: each (change, node) pair at most one request
// per interval, each waiting for its answer.
type prober struct {
	client   *http.Client
	interval time.Duration
	sent     atomic.Int64
}

// status sends one probe and returns the status (0 on a transport error).
func (p *prober) status(ctx context.Context, proxy, path, key string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxy+path, nil)
	if err != nil {
		return 0
	}
	if key != "" {
		req.Header.Set("Apikey", key)
	}
	req.Header.Set("User-Agent", "sluice-bench-canary")
	p.sent.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// until probes proxy+path until it answers want and returns the time from
// start to the send of the first such probe; false when timeout passed
// first.
func (p *prober) until(ctx context.Context, proxy, path, key string, want int, start time.Time, timeout time.Duration) (time.Duration, bool) {
	for time.Since(start) < timeout && ctx.Err() == nil {
		sent := time.Now()
		if p.status(ctx, proxy, path, key) == want {
			return max(sent.Sub(start), 0), true
		}
		// Pace from the send, so that a slow answer does not add a pause.
		if d := p.interval - time.Since(sent); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
	return 0, false
}

// readers are the nodes probed: every node but the DB-less ones.
func (r *run) readers() []int {
	var out []int
	for i := range r.c.Nodes {
		if !dbless(&r.c.Nodes[i]) {
			out = append(out, i)
		}
	}
	return out
}

// probeRounds waits for the setup on every node, then runs the rounds.
func (r *run) probeRounds(ctx context.Context, can *canary, writer int) error {
	c := r.c
	probed := r.readers()
	c.Rounds, c.ProbeIntervalMS, c.ProbeTimeoutS = r.opts.Rounds, float64(r.opts.ProbeInterval)/1e6, r.opts.ProbeTimeout.Seconds()
	c.MaxProbeRPSPerNode = float64(len(kinds)) * float64(time.Second) / float64(r.opts.ProbeInterval)
	r.samples, r.missed = make([]map[string][]float64, len(c.Nodes)), make([]map[string]int, len(c.Nodes))
	for i := range c.Nodes {
		r.samples[i], r.missed[i] = map[string][]float64{}, map[string]int{}
	}
	r.waitSetup(ctx, can, probed)
	before := r.scrapeAll(ctx)
	r.logf("probing: %d rounds of %d changes on %s, %d nodes probed every %v (at most %.0f requests/s per node), unseen after %v = missed",
		r.opts.Rounds, len(kinds), c.Writer, len(probed), r.opts.ProbeInterval, c.MaxProbeRPSPerNode, r.opts.ProbeTimeout)
	t0 := time.Now()
	rng := rand.New(rand.NewPCG(uint64(t0.UnixNano()), 14))
	var err error
	for i := 0; i < r.opts.Rounds && ctx.Err() == nil; i++ {
		if err = r.round(ctx, can, i, writer, probed, rng); err != nil {
			break
		}
		r.logf("round %d/%d done; %s", i+1, r.opts.Rounds, r.roundSummary())
	}
	elapsed := time.Since(t0)
	c.ProbeRequests, c.ProbeSeconds = int(r.probe.sent.Load()), elapsed.Seconds()
	after := r.scrapeAll(context.WithoutCancel(ctx))
	r.summarize(before, after, elapsed, writer)
	return err
}

// waitSetup waits until each probed node shows the last round's entities;
// a node that does not within 3 x frequency + 10s is noted, and its
// changes will count as missed.
func (r *run) waitSetup(ctx context.Context, can *canary, probed []int) {
	limit := 3*r.freq + 10*time.Second
	last := can.rounds[len(can.rounds)-1]
	start := time.Now()
	var wg sync.WaitGroup
	for _, i := range probed {
		n := &r.c.Nodes[i]
		wg.Go(func() {
			for _, pr := range []struct{ path, key string }{{last.plugPath, ""}, {last.delPath, ""}, {can.keyPath, last.key}} {
				if _, ok := r.probe.until(ctx, n.Proxy, pr.path, pr.key, altStatus, start, limit); !ok {
					if ctx.Err() != nil {
						return // interrupted: nothing to say about the node
					}
					n.Probe = fmt.Sprintf("yes, but the canary setup was not visible within %v: every change counts as missed", limit)
					n.Lagging, n.LagNote = true, fmt.Sprintf("canary setup not visible within %v", limit)
					return
				}
			}
			n.Probe = "yes" + parenthesized(n.Probe)
		})
	}
	wg.Wait()
	missing := 0
	for _, i := range probed {
		if r.c.Nodes[i].Lagging {
			missing++
		}
	}
	r.logf("canary setup visible on %d of %d nodes after %v", len(probed)-missing, len(probed), time.Since(start).Round(time.Millisecond))
}

// round checks that every node shows the round's "before" state, waits a
// random fraction of the poll interval (so that writes do not line up with
// polls), makes the 4 changes at once and probes every node for each.
func (r *run) round(ctx context.Context, can *canary, i, writer int, probed []int, rng *rand.Rand) error {
	a, e := r.admins[writer], can.rounds[i]
	changes := []change{
		{kind: "route-created", path: e.newPath, before: baseStatus, wanted: altStatus, do: func(ctx context.Context) error {
			_, err := can.route(ctx, can.alt, fmt.Sprintf("r%d-new", i), e.newPath)
			return err
		}},
		{kind: "plugin-added", path: e.plugPath, before: altStatus, wanted: http.StatusTeapot, do: func(ctx context.Context) error {
			_, err := a.create(ctx, "/routes/"+e.plugRoute+"/plugins", can.with(map[string]any{"name": "request-termination", "config": map[string]any{"status_code": http.StatusTeapot}}))
			return err
		}},
		{kind: "route-deleted", path: e.delPath, before: altStatus, wanted: baseStatus, do: func(ctx context.Context) error {
			return a.del(ctx, "/routes/"+e.delRoute)
		}},
		{kind: "credential-revoked", path: can.keyPath, key: e.key, before: altStatus, wanted: http.StatusUnauthorized, do: func(ctx context.Context) error {
			return a.del(ctx, "/consumers/"+can.consumer+"/key-auth/"+e.credID)
		}},
	}
	// ready[n][j]: node n shows change j's "before" state (one request per
	// change and node, the nodes in parallel).
	ready := make(map[int][]bool, len(probed))
	for _, n := range probed {
		ready[n] = make([]bool, len(changes))
	}
	var rw sync.WaitGroup
	for _, n := range probed {
		rw.Go(func() {
			for j, ch := range changes {
				ready[n][j] = r.probe.status(ctx, r.c.Nodes[n].Proxy, ch.path, ch.key) == ch.before
			}
		})
	}
	rw.Wait()
	select {
	case <-time.After(time.Duration(rng.Float64() * float64(r.freq))):
	case <-ctx.Done():
		return nil
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(changes))
	for j, ch := range changes {
		wg.Go(func() {
			if err := ch.do(ctx); err != nil {
				errc <- fmt.Errorf("bench --cluster: %s on %s: %w", ch.kind, a.node, err)
				return
			}
			start := time.Now()
			var pw sync.WaitGroup
			for _, n := range probed {
				pw.Go(func() {
					if !ready[n][j] {
						r.record(n, ch.kind, 0, false)
						return
					}
					w, ok := r.probe.until(ctx, r.c.Nodes[n].Proxy, ch.path, ch.key, ch.wanted, start, r.opts.ProbeTimeout)
					if ctx.Err() == nil {
						r.record(n, ch.kind, w, ok)
					}
				})
			}
			pw.Wait()
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func (r *run) record(node int, kind string, w time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.samples[node][kind] = append(r.samples[node][kind], float64(w)/1e6)
	} else {
		r.missed[node][kind]++
	}
}

// roundSummary is the progress line: every node's p50 and misses so far.
func (r *run) roundSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for i, n := range r.c.Nodes {
		var all []float64
		missed := 0
		for _, k := range kinds {
			all = append(all, r.samples[i][k]...)
			missed += r.missed[i][k]
		}
		if len(all)+missed == 0 {
			continue
		}
		w := windowOf(sortedCopy(all), missed)
		parts = append(parts, fmt.Sprintf("%s p50 %.0f ms max %.0f ms (%d, %d missed)", n.Name, w.P50, w.Max, w.Samples, w.Missed))
	}
	return strings.Join(parts, "; ")
}
