package run

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/bench/scrape"
)

// adminCreation creates routes one by one through the Admin API of a
// fresh SQLite node and times them per tenth, until budget runs out.
func (b *bench) adminCreation(ctx context.Context, routes int, budget time.Duration) (*report.AdminCreation, error) {
	ac := &report.AdminCreation{Routes: routes, Database: "sqlite"}
	dir := filepath.Join(b.opts.Out, "scale-admin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ac, fmt.Errorf("bench: %w", err)
	}
	b.logf("scale: creating %d routes one by one through the Admin API of a fresh SQLite node (time budget %v)", routes, budget)
	hc, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: 1, Dir: dir, Args: b.args(),
		Env: b.nodeEnv("SLUICE_DATABASE=sqlite", "SLUICE_SQLITE_PATH="+filepath.Join(dir, "sluice.db"))})
	if err != nil {
		return ac, fmt.Errorf("bench: scale: %w", err)
	}
	defer hc.Stop()
	n := hc.Nodes[0]
	if _, err := n.MustAdmin(ctx, http.MethodPost, "/services", url.Values{"name": {"admin"}, "url": {b.upstream}}, http.StatusCreated); err != nil {
		return ac, fmt.Errorf("bench: scale: %w", err)
	}
	chunk := max(1, routes/10)
	start := time.Now()
	var created atomic.Int64
	stop := b.progress(func(elapsed time.Duration) {
		c := created.Load()
		b.logf("  %d/%d routes created (%.0f/s)", c, routes, float64(c)/elapsed.Seconds())
	})
	defer stop()
	t := time.Now()
	from := 0
	for i := range routes {
		if time.Since(start) > budget {
			ac.Truncated = true
			break
		}
		if _, err := n.MustAdmin(ctx, http.MethodPost, "/services/admin/routes", url.Values{"paths[]": {fmt.Sprintf("/a%07d", i)}}, http.StatusCreated); err != nil {
			return ac, fmt.Errorf("bench: scale: route %d through the Admin API: %w", i, err)
		}
		ac.Created = i + 1
		created.Store(int64(ac.Created))
		if ac.Created%chunk == 0 || ac.Created == routes {
			secs := time.Since(t).Seconds()
			ac.Chunks = append(ac.Chunks, report.AdminChunk{From: from, To: ac.Created, Seconds: secs, MSPerRoute: 1000 * secs / float64(ac.Created-from)})
			t, from = time.Now(), ac.Created
		}
	}
	stop()
	ac.Seconds = time.Since(start).Seconds()
	if len(ac.Chunks) > 1 {
		ac.LastOverFirst = ac.Chunks[len(ac.Chunks)-1].MSPerRoute / ac.Chunks[0].MSPerRoute
	}
	if m, err := scrape.Get(ctx, n.StatusURL+"/metrics"); err == nil {
		ac.Rebuilds = m.Sum("sluice_router_rebuilds_total")
	}
	b.logf("  %d routes in %.1f s; last chunk / first chunk = %.2f; %.0f route-table rebuilds", ac.Created, ac.Seconds, ac.LastOverFirst, ac.Rebuilds)
	if ctx.Err() != nil {
		return ac, ctx.Err()
	}
	return ac, nil
}
