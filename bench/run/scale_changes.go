package run

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// The route changes, made in turn.
const (
	changeCreate = iota
	changeUpdate
	changeDelete
)

// routeChanges makes Profile.ScaleRouteChanges route changes on node A,
// one at a time, in turn a route created, a seeded route's path changed
// and a seeded route deleted (from the end of the table; route 0, which
// the other measurements request, is never touched), and probes every
// node's proxy until it serves each.
func (b *bench) routeChanges(ctx context.Context, nodes []*harness.Node, d *dataset, sc *report.Scale) error {
	count := b.opts.Profile.ScaleRouteChanges
	if count <= 0 {
		return nil
	}
	if 2*count/3+2 >= d.routes {
		return fmt.Errorf("bench: scale: %d route changes need more than %d seeded routes", count, d.routes)
	}
	const every = 2 * time.Millisecond
	limit := time.Duration(2*scaleFrequency*float64(time.Second)) + 30*time.Second
	b.logf("scale: %d route changes on node A (create, update, delete in turn), each probed on every node every %v", count, every)
	before, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	a := nodes[0]
	perNode := make([][]float64, len(nodes))
	var windows []float64
	rc := &sc.RouteChangeApplyMS
	var made atomic.Int64
	stop := b.progress(func(time.Duration) { b.logf("  %d/%d route changes made", made.Load(), count) })
	defer stop()
	victim := d.routes - 1 // seeded routes updated or deleted, from the end
	rng := rand.New(rand.NewPCG(5, uint64(time.Now().UnixNano())))
	for i := range count {
		// A change made as soon as the last one showed would come just
		// after the other node's poll, every time: a pause drawn uniformly
		// over one poll interval makes every phase of the poll equally
		// likely.
		select {
		case <-time.After(time.Duration(rng.Float64() * scaleFrequency * float64(time.Second))):
		case <-ctx.Done():
			return ctx.Err()
		}
		made.Add(1)
		var path string
		want := http.StatusOK
		var err error
		switch i % 3 {
		case changeCreate:
			path = fmt.Sprintf("/c%d-%s", i, b.prefix)
			_, err = a.MustAdmin(ctx, http.MethodPost, "/services/"+d.service+"/routes", url.Values{"paths[]": {path}}, http.StatusCreated)
		case changeUpdate:
			path = fmt.Sprintf("/u%d-%s", i, b.prefix)
			_, err = a.MustAdmin(ctx, http.MethodPatch, "/routes/"+d.routeName(victim), url.Values{"paths[]": {path}}, http.StatusOK)
			victim--
		case changeDelete:
			path, want = d.routePath(victim), http.StatusNotFound
			_, err = a.MustAdmin(ctx, http.MethodDelete, "/routes/"+d.routeName(victim), nil, http.StatusNoContent)
			victim--
		}
		if err != nil {
			return fmt.Errorf("bench: scale: route change %d: %w", i, err)
		}
		start := time.Now()
		ws := make([]time.Duration, len(nodes))
		oks := make([]bool, len(nodes))
		var wg sync.WaitGroup
		for j, n := range nodes {
			wg.Go(func() { ws[j], oks[j] = probe(ctx, n, path, d.key(0), want, start, limit, every) })
		}
		wg.Wait()
		if slices.Contains(oks, false) {
			rc.Missed++
			continue
		}
		for j := range nodes {
			perNode[j] = append(perNode[j], float64(ws[j])/1e6)
		}
		windows = append(windows, float64(slices.Max(ws))/1e6)
	}
	stop()
	after, err := scrapeAll(ctx, nodes)
	if err != nil {
		return err
	}
	q := quantiles(windows)
	rc.P50, rc.P99, rc.Max, rc.N, rc.ProbeMS = q.p50, q.p99, q.max, len(windows), float64(every)/1e6
	rc.Method = fmt.Sprintf("%d changes made one at a time on node A's Admin API (route created, path updated, route deleted in turn), each after a pause drawn uniformly over one poll interval; window from its answer to the send of the first probe that saw the change, on the last node to show it (every node's proxy probed every %v); p99 nearest-rank", count, every)
	for j := range nodes {
		nq := quantiles(perNode[j])
		sc.Nodes[j].RouteChangeP50MS, sc.Nodes[j].RouteChangeP99MS = nq.p50, nq.p99
	}
	nodeApply(before, after, rc)
	b.logf("  route changes: wall p50 %.1f ms p99 %.1f ms max %.1f ms (%d missed); %s{snapshot=\"routes\"} p50 %.2f ms p99 %.2f ms over %.0f; %.0f full rebuilds",
		rc.P50, rc.P99, rc.Max, rc.Missed, rc.NodeMetric, rc.NodeP50, rc.NodeP99, rc.NodeCount, rc.FullRebuilds)
	return nil
}

// nodeApply fills rc's node view from the nodes' metrics before and
// after the changes: the route snapshot's apply histogram, summed over the
// nodes, and their full rebuilds. A node with incremental applies exports
// the apply histogram (its series exist from the start, at 0); others
// only the full rebuild's.
func nodeApply(before, after []scrape.Samples, rc *report.RouteChanges) {
	rc.NodeMetric = rebuildHist
	if _, ok := after[len(after)-1][applyHist+`_count{snapshot="routes"}`]; ok {
		rc.NodeMetric = applyHist
	}
	var hist []scrape.Bucket
	for j := range after {
		hist = scrape.Add(hist, scrape.Sub(after[j].With("snapshot", "routes").Histogram(rc.NodeMetric), before[j].With("snapshot", "routes").Histogram(rc.NodeMetric)))
		rc.FullRebuilds += after[j].Sum("sluice_router_rebuilds_total") - before[j].Sum("sluice_router_rebuilds_total")
	}
	if len(hist) > 0 && hist[len(hist)-1].Count > 0 {
		rc.NodeCount = hist[len(hist)-1].Count
		rc.NodeP50, rc.NodeP99 = 1000*scrape.Quantile(hist, 0.5), 1000*scrape.Quantile(hist, 0.99)
	}
}

type quants struct{ p50, p99, max float64 }

// quantiles returns the nearest-rank p50 and p99 and the max of ms.
func quantiles(ms []float64) quants {
	if len(ms) == 0 {
		return quants{}
	}
	s := slices.Sorted(slices.Values(ms))
	at := func(q float64) float64 { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	return quants{at(0.5), at(0.99), s[len(s)-1]}
}
