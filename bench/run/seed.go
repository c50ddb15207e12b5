package run

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/bench/report"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	"github.com/sluice-gw/sluice/gateway/store"
)

// dataset names the scale profile's entities: one service, routes
// r<i> with paths /r<i> (zero-padded to a fixed width, so no path is a
// prefix of another), consumers u<i> each with the key-auth key k<i>,
// and a global key-auth plugin.
type dataset struct {
	routes, consumers int
	width             int
	service           string
	serviceID         string
}

func newDataset(routes, consumers int) *dataset {
	return &dataset{routes: routes, consumers: consumers, width: max(6, len(strconv.Itoa(routes-1))),
		service: "scale", serviceID: uuid.NewString()}
}

func (d *dataset) routeName(i int) string { return fmt.Sprintf("r%0*d", d.width, i) }
func (d *dataset) routePath(i int) string { return "/" + d.routeName(i) }
func (d *dataset) key(i int) string       { return "k" + strconv.Itoa(i) }

// seedBatch is the number of operations per Apply: one transaction each.
const seedBatch = 2000

// seed writes the dataset into st in batches of seedBatch operations,
// without cluster events (the nodes start afterwards and read it whole),
// logging progress with the rate and the time left on long steps.
func (b *bench) seed(ctx context.Context, st store.Store, d *dataset, workers int) (report.Seed, error) {
	out := report.Seed{BatchSize: seedBatch}
	start := time.Now()
	now := start.Unix()
	head, err := d.headOps(b.upstream, now)
	if err != nil {
		return out, err
	}
	if err := st.Apply(ctx, head, nil); err != nil {
		return out, fmt.Errorf("bench: seed: service and key-auth plugin: %w", err)
	}
	t := time.Now()
	err = b.seedStep(ctx, st, "routes", d.routes, 1, workers, func(i int) ([]store.Op, error) {
		name := d.routeName(i)
		r := entity.Default(entity.KindRoute).(*entity.Route)
		r.ID, r.CreatedAt, r.UpdatedAt, r.Name = uuid.NewString(), now, now, &name
		r.Paths, r.Service = []string{d.routePath(i)}, &entity.Ref{ID: d.serviceID}
		return ops(r)
	})
	out.RoutesSeconds = time.Since(t).Seconds()
	if err != nil {
		return out, err
	}
	t = time.Now()
	err = b.seedStep(ctx, st, "consumers with a key-auth credential", d.consumers, 2, workers, func(i int) ([]store.Op, error) {
		user := "u" + strconv.Itoa(i)
		c := &entity.Consumer{ID: uuid.NewString(), CreatedAt: now, UpdatedAt: now, Username: &user}
		k := &entity.KeyAuthCredential{ID: uuid.NewString(), CreatedAt: now, Consumer: &entity.Ref{ID: c.ID}, Key: d.key(i)}
		return ops(c, k)
	})
	out.ConsumerSeconds = time.Since(t).Seconds()
	out.Entities = 2 + d.routes + 2*d.consumers
	out.Seconds = time.Since(start).Seconds()
	if out.Seconds > 0 {
		out.EntitiesPerSec = float64(out.Entities) / out.Seconds
	}
	return out, err
}

// headOps inserts the service and the global key-auth plugin (Kong's
// default configuration, as the Admin API stores it).
func (d *dataset) headOps(upstream string, now int64) ([]store.Op, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("bench: seed: upstream %q: %w", upstream, err)
	}
	port, _ := strconv.Atoi(u.Port())
	s := entity.Default(entity.KindService).(*entity.Service)
	s.ID, s.CreatedAt, s.UpdatedAt, s.Name, s.Host, s.Port = d.serviceID, now, now, &d.service, u.Hostname(), port
	conf, _, err := plugins.NewRegistry(keyauth.New(nil)).Validate("key-auth", json.RawMessage(`{}`))
	if err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	p := entity.Default(entity.KindPlugin).(*entity.Plugin)
	p.ID, p.CreatedAt, p.UpdatedAt, p.Name, p.Config = uuid.NewString(), now, now, "key-auth", conf
	return ops(s, p)
}

// seedStep writes n items of opsPer operations each, made by mk, in
// batches applied by workers goroutines.
func (b *bench) seedStep(ctx context.Context, st store.Store, what string, n, opsPer, workers int, mk func(i int) ([]store.Op, error)) error {
	per := max(1, seedBatch/opsPer)
	batches := (n + per - 1) / per
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	stop := b.progress(func(elapsed time.Duration) {
		d := int(done.Load())
		rate := float64(d) / elapsed.Seconds()
		eta := "-"
		if rate > 0 {
			eta = (time.Duration(float64(n-d)/rate) * time.Second).Round(time.Second).String()
		}
		b.logf("  seed %s: %d/%d (%.0f/s, %.0f entities/s, ETA %s)", what, d, n, rate, rate*float64(opsPer), eta)
	})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= batches || ctx.Err() != nil {
					return
				}
				var batch []store.Op
				for j := i * per; j < min(n, (i+1)*per); j++ {
					o, err := mk(j)
					if err != nil {
						errc <- err
						return
					}
					batch = append(batch, o...)
				}
				if err := st.Apply(ctx, batch, nil); err != nil {
					errc <- fmt.Errorf("bench: seed %s, batch %d of %d: %w", what, i+1, batches, err)
					next.Store(int64(batches))
					return
				}
				done.Add(int64(len(batch) / opsPer))
			}
		}()
	}
	wg.Wait()
	stop()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	b.logf("  seeded %d %s in %.1f s (%.0f entities/s)", n, what, secs, float64(n*opsPer)/secs)
	return nil
}

// progress calls report every 2 s with the time elapsed, until stop
// (which may be called more than once).
func (b *bench) progress(report func(elapsed time.Duration)) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				report(time.Since(start))
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// ops returns the insert operations of es, in order.
func ops(es ...entity.Entity) ([]store.Op, error) {
	out := make([]store.Op, 0, len(es))
	for _, e := range es {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("bench: seed: cannot encode %s: %w", e.EntityKind(), err)
		}
		out = append(out, store.Op{Type: store.OpInsert, Record: store.NewRecord(e, data)})
	}
	return out, nil
}
