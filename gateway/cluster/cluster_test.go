package cluster

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
)

// recorder is an Applier that remembers what it was told.
type recorder struct {
	mu    sync.Mutex
	keys  []string
	calls int
	all   int
}

func (r *recorder) Invalidate(_ context.Context, keys []entity.CacheKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, k := range keys {
		r.keys = append(r.keys, k.String())
	}
}

func (r *recorder) InvalidateAll(context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all++
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// openShared opens two stores on one SQLite file, as two node processes do.
func openShared(t testing.TB) (store.Store, store.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.db")
	open := func() store.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Up(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open()
}

// graceOnly hides the store's event cursor, so that the cluster polls it
// as it polls PostgreSQL and Cassandra: by At, re-reading a grace window.
type graceOnly struct{ store.Store }

// pollModes are the two ways a node polls: by cursor (SQLite) and by a
// grace window (the others), both on a real SQLite store.
var pollModes = []struct {
	name string
	wrap func(store.Store) store.Store
}{
	{"cursor", func(st store.Store) store.Store { return st }},
	{"grace", func(st store.Store) store.Store { return graceOnly{st} }},
}

func newNode(t testing.TB, st store.Store, id string, opts Options) (*Cluster, *recorder) {
	t.Helper()
	rec := new(recorder)
	opts.NodeID = id
	c, err := New(st, rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return c, rec
}

// write stores a service and a route of it on st together with c's
// events for them (two events), as the Admin API does.
func write(t *testing.T, ctx context.Context, c *Cluster, st store.Store, name string) []entity.CacheKey {
	t.Helper()
	svc := &entity.Service{ID: "00000000-0000-4000-8000-" + name, Name: &name, Host: "example.com", Protocol: "http", Port: 80}
	route := &entity.Route{ID: "00000000-0000-4000-8001-" + name, Paths: []string{"/" + name}, Service: &entity.Ref{ID: svc.ID}}
	var ops []store.Op
	var keys []entity.CacheKey
	for _, e := range []entity.Entity{svc, route} {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, store.Op{Type: store.OpInsert, Record: store.NewRecord(e, data)})
		keys = append(keys, entity.InvalidationKeys(e)...)
	}
	if err := st.Apply(ctx, ops, c.Events(ctx, keys)); err != nil {
		t.Fatal(err)
	}
	c.Invalidated(ctx, keys)
	return keys
}

func TestPollAppliesOtherNodesEventsOnce(t *testing.T) {
	for _, mode := range pollModes {
		t.Run(mode.name, func(t *testing.T) {
			stA, stB := openShared(t)
			testPollAppliesOnce(t, stA, mode.wrap(stB))
		})
	}
}

func testPollAppliesOnce(t *testing.T, stA, stB store.Store) {
	a, recA := newNode(t, stA, "node-a", Options{Frequency: time.Hour})
	reg := prometheus.NewRegistry()
	b, recB := newNode(t, stB, "node-b", Options{Frequency: time.Hour, Registerer: reg})
	ctx := context.Background()

	keys := write(t, ctx, a, stA, "000000000001")
	want := []string{keys[0].String(), keys[1].String()}
	if got := recA.got(); !slices.Equal(got, want) {
		t.Fatalf("node A applied %v locally, want %v", got, want)
	}
	for range 2 { // a second poll re-reads the grace window: no duplicate
		if err := b.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := recB.got(); !slices.Equal(got, want) {
		t.Errorf("node B applied %v, want %v exactly once each", got, want)
	}
	if recB.calls != 1 {
		t.Errorf("node B made %d Invalidate calls for one poll, want 1 (one rebuild covers them all)", recB.calls)
	}
	if err := a.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := recA.got(); len(got) != 2 {
		t.Errorf("node A re-applied its own events: %v", got)
	}
	if n := testutil.ToFloat64(b.metrics.applied); n != 2 {
		t.Errorf("sluice_cluster_events_applied_total = %v, want 2", n)
	}
	if n := testutil.CollectAndCount(reg, "sluice_invalidation_lag_seconds"); n != 1 {
		t.Errorf("lag histogram not registered: %d series", n)
	}
}

func TestPropagationDelaysApplication(t *testing.T) {
	stA, stB := openShared(t)
	const delay = 400 * time.Millisecond
	a, _ := newNode(t, stA, "node-a", Options{Frequency: time.Hour, Propagation: delay})
	b, recB := newNode(t, stB, "node-b", Options{Frequency: time.Hour, Propagation: delay})
	ctx := context.Background()

	written := time.Now()
	write(t, ctx, a, stA, "000000000002")
	if err := b.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := recB.got(); len(got) != 0 && time.Since(written) < delay {
		t.Fatalf("applied %v before db_update_propagation elapsed", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(recB.got()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("events not applied after their not-before time; got %v", recB.got())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if waited := time.Since(written); waited < delay-50*time.Millisecond {
		t.Errorf("applied after %v, before the %v propagation delay", waited, delay)
	}
}

func TestPollLoopDeliversWithinFrequency(t *testing.T) {
	stA, stB := openShared(t)
	a, _ := newNode(t, stA, "node-a", Options{Frequency: 50 * time.Millisecond})
	_, recB := newNode(t, stB, "node-b", Options{Frequency: 50 * time.Millisecond})
	write(t, context.Background(), a, stA, "000000000003")
	deadline := time.Now().Add(5 * time.Second)
	for len(recB.got()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the poll loop never delivered the events")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestApplySpanLinksToTheWrite(t *testing.T) {
	stA, stB := openShared(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	a, _ := newNode(t, stA, "node-a", Options{Frequency: time.Hour, TracerProvider: tp})
	b, _ := newNode(t, stB, "node-b", Options{Frequency: time.Hour, TracerProvider: tp})

	ctx, write1 := tp.Tracer("test").Start(context.Background(), "admin write")
	write(t, ctx, a, stA, "000000000004")
	write1.End()
	if err := b.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	var applies []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == "sluice.cluster.apply" {
			applies = append(applies, s)
		}
	}
	// One poll applies both events of the write in one span, linked to the
	// write once per event.
	if len(applies) != 1 {
		t.Fatalf("got %d apply spans, want 1 for the poll", len(applies))
	}
	s := applies[0]
	if len(s.Links()) != 2 {
		t.Fatalf("apply span has %d links, want one per event (2)", len(s.Links()))
	}
	for _, l := range s.Links() {
		if l.SpanContext.SpanID() != write1.SpanContext().SpanID() {
			t.Errorf("apply span links %s, want the write's span %s", l.SpanContext.SpanID(), write1.SpanContext().SpanID())
		}
	}
	if s.SpanContext().TraceID() == write1.SpanContext().TraceID() {
		t.Error("apply span should start its own trace and link to the write, not continue it")
	}
}

func TestWatermarkTooOldPurgesEverything(t *testing.T) {
	stA, _ := openShared(t)
	c, rec := newNode(t, stA, "node-a", Options{Frequency: time.Hour, EventTTL: time.Hour})
	c.mu.Lock()
	c.watermark = c.watermark.Add(-2 * time.Hour)
	c.mu.Unlock()
	if err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.all != 1 {
		t.Errorf("InvalidateAll called %d times, want 1 after falling behind the event TTL", rec.all)
	}
}

// TestEventsBeforeStartNotCountedAsLag: a node starting re-reads the grace
// window and applies what it finds, but those events' age is not
// propagation lag.
func TestEventsBeforeStartNotCountedAsLag(t *testing.T) {
	for _, mode := range pollModes {
		t.Run(mode.name, func(t *testing.T) {
			stA, stB := openShared(t)
			testBeforeStart(t, stA, mode.wrap(stB))
		})
	}
}

// testBeforeStart: a node polling by grace window applies the events
// written before it started (to be safe); one polling by cursor starts
// after them, as what they changed was committed with them and the node
// caches nothing yet.
func testBeforeStart(t *testing.T, stA, stB store.Store) {
	a, _ := newNode(t, stA, "node-a", Options{Frequency: time.Hour})
	write(t, context.Background(), a, stA, "000000000005")
	b, recB := newNode(t, stB, "node-b", Options{Frequency: time.Hour})
	if err := b.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := 2
	if _, ok := stB.(store.EventCursor); ok {
		want = 0
	}
	if got := recB.got(); len(got) != want {
		t.Fatalf("node B applied %v, want %d events from before its start", got, want)
	}
	if n := testutil.CollectAndCount(b.metrics.lag); n != 1 {
		t.Fatalf("lag histogram: %d series", n)
	}
	var m dto.Metric
	if err := b.metrics.lag.Write(&m); err != nil {
		t.Fatal(err)
	}
	if c := m.GetHistogram().GetSampleCount(); c != 0 {
		t.Errorf("lag histogram counted %d events written before the node started, want 0", c)
	}
}

// TestLagBucketsResolveTheInterval checks the lag histogram's bounds at the
// frequencies the benchmark sweeps: every tenth of the interval up to two
// intervals is a bound, so p50 and p99 of a lag uniform on [0, f] are
// resolved to f/10, and push's milliseconds keep their own buckets.
func TestLagBucketsResolveTheInterval(t *testing.T) {
	for _, f := range []float64{0.1, 0.25, 0.5, 1, 2, 5} {
		b := lagBuckets(time.Duration(f * float64(time.Second)))
		if !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b) {
			t.Errorf("f=%g: bounds %v not strictly increasing", f, b)
		}
		for k := 1; k <= 20; k++ {
			want := math.Round(float64(k)*f/10*1e6) / 1e6
			if !slices.Contains(b, want) {
				t.Errorf("f=%g: no bound at %g (%d/10 of the interval) in %v", f, want, k, b)
			}
		}
		if b[0] > .005 || b[len(b)-1] != 10*f {
			t.Errorf("f=%g: bounds %v; want push's milliseconds first and 10 intervals last", f, b)
		}
	}
	// Registered with the node's frequency.
	reg := prometheus.NewRegistry()
	newMetrics(reg, 250*time.Millisecond).lag.Observe(0.2)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_invalidation_lag_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		for _, bk := range h.GetBucket() {
			if bk.GetUpperBound() == 0.2 && bk.GetCumulativeCount() == 1 {
				return
			}
		}
		t.Fatalf("no bucket le=0.2 holding the observation: %v", h.GetBucket())
	}
	t.Fatal("sluice_invalidation_lag_seconds not registered")
}
