package run

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"time"

	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/router"
	"github.com/sluice-gw/sluice/gateway/store"
)

// measureMatch loads the routes and services from the datastore as a node
// does, builds the router and times Match over request paths: 90 % hits
// spread over the whole table, 10 % misses. The loop runs on a locked OS
// thread; that thread's CPU time (getrusage RUSAGE_THREAD) and the wall
// time are divided by the matches.
func (b *bench) measureMatch(ctx context.Context, st store.Store, d *dataset, sc *report.Scale) error {
	t := time.Now()
	services := map[string]*entity.Service{}
	var targets []router.Target
	err := store.Each(ctx, st, entity.KindService, 1000, func(e entity.Entity) { services[e.PrimaryKey()] = e.(*entity.Service) })
	if err == nil {
		err = store.Each(ctx, st, entity.KindRoute, 1000, func(e entity.Entity) {
			r := e.(*entity.Route)
			tg := router.Target{Route: r}
			if r.Service != nil {
				tg.Service = services[r.Service.ID]
			}
			targets = append(targets, tg)
		})
	}
	if err != nil {
		return fmt.Errorf("bench: scale: %w", err)
	}
	loaded := time.Since(t)
	t = time.Now()
	rt, err := router.New(targets)
	if err != nil {
		return fmt.Errorf("bench: scale: router: %w", err)
	}
	built := time.Since(t)
	rng := rand.New(rand.NewPCG(1, 2))
	paths := make([]string, 4096)
	for i := range paths {
		if i%10 == 9 {
			paths[i] = fmt.Sprintf("/miss/%d", rng.IntN(d.routes))
			continue
		}
		paths[i] = d.routePath(rng.IntN(d.routes)) + "/items"
	}
	const rounds = 250 // ~1M matches
	hits := 0
	runtime.LockOSThread()
	cpu0, w0 := procstat.Thread(), time.Now()
	for range rounds {
		for _, p := range paths {
			if _, ok := rt.Match(http.MethodGet, "localhost", p, nil); ok {
				hits++
			}
		}
	}
	wall, cpu := time.Since(w0), procstat.Thread()-cpu0
	runtime.UnlockOSThread()
	n := float64(rounds * len(paths))
	if want := rounds * (len(paths) - len(paths)/10); hits != want {
		return fmt.Errorf("bench: scale: the router matched %d of %d requests for seeded routes", hits, want)
	}
	sc.MatchNS, sc.MatchWallNS = float64(cpu)/n, float64(wall)/n
	clock := "the thread's CPU time (getrusage RUSAGE_THREAD)"
	if cpu <= 0 { // not Linux
		sc.MatchNS, clock = sc.MatchWallNS, "wall time (no thread CPU time on this OS)"
	}
	sc.MatchMethod = fmt.Sprintf("router.New over the %d routes read from the datastore (read %.1f s, built %.1f s) in the bench process; %.0f Match calls, 90 %% hits over the table, 10 %% misses, on one locked OS thread: %s per call",
		rt.Len(), loaded.Seconds(), built.Seconds(), n, clock)
	b.logf("  router over %d routes: Match %.0f ns of CPU, %.0f ns wall (read %.1f s, built %.1f s)", rt.Len(), sc.MatchNS, sc.MatchWallNS, loaded.Seconds(), built.Seconds())
	return nil
}
