// Package storeobs instruments a store.Store the way promhttp instruments
// an http.RoundTripper: New wraps a datastore so that each entity lookup
// (Get, GetByUnique) is timed into the datastore metric families, traced as
// a sluice.datastore.query span when its request is traced, and bounded by
// a timeout. The node hands the wrapped store to the entity cache as its
// loader, so the families count the lookups made on cache misses.
package storeobs

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Options configures the instrumentation. The zero value times lookups
// into no registry, traces nothing and sets no timeout.
type Options struct {
	// Registerer receives the datastore families (see metrics.go); nil
	// registers them nowhere.
	Registerer prometheus.Registerer
	// TracerProvider creates the query spans; nil means none.
	TracerProvider trace.TracerProvider
	// System is the span's db.system attribute: "sqlite", "postgres",
	// "cassandra" (OpenTelemetry's names for them).
	System string
	// Timeout bounds each lookup, network included: a datastore's own
	// timeout may run on the server only (PostgreSQL's statement_timeout),
	// and a slow link must fail the request rather than hang it. 0 means
	// no bound (SQLite, which has no network to wait on).
	Timeout time.Duration
}

// Store is a store.Store whose Get and GetByUnique are instrumented; every
// other method is the wrapped store's, uninstrumented. It does not expose
// the wrapped store's optional interfaces (store.Pinger, store.Counters,
// ...): hand the unwrapped store to what needs them.
type Store struct {
	store.Store
	metrics *metrics
	tracer  trace.Tracer // nil when tracing is off
	system  attribute.KeyValue
	timeout time.Duration
}

// New wraps st.
func New(st store.Store, opts Options) *Store {
	s := &Store{Store: st, metrics: newMetrics(opts.Registerer), system: attribute.String("db.system", opts.System),
		timeout: opts.Timeout}
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer("github.com/sluice-gw/sluice/gateway/store/storeobs")
	}
	return s
}

// Get is the wrapped store's Get, instrumented.
func (s *Store) Get(ctx context.Context, kind entity.Kind, id string) (_ store.Record, err error) {
	ctx, done := s.start(ctx, kind)
	defer func() { done(err) }()
	return s.Store.Get(ctx, kind, id)
}

// GetByUnique is the wrapped store's GetByUnique, instrumented.
func (s *Store) GetByUnique(ctx context.Context, kind entity.Kind, field, value string) (_ store.Record, err error) {
	ctx, done := s.start(ctx, kind)
	defer func() { done(err) }()
	return s.Store.GetByUnique(ctx, kind, field, value)
}

// Check asks the datastore whether it is reachable (Ping when it is a
// store.Pinger, else Now), within 2 seconds, and records the answer in
// sluice_datastore_reachable. It is not counted as a query.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var err error
	if p, ok := s.Store.(store.Pinger); ok {
		err = p.Ping(ctx)
	} else {
		_, err = s.Store.Now(ctx)
	}
	s.metrics.setReachable(err == nil)
	return err
}

// Reachable reports what the last Check or lookup found: false until one
// succeeded, and after one failed with store.ErrUnavailable.
func (s *Store) Reachable() bool { return s.metrics.up.Load() }

// start begins a lookup of kind: it bounds ctx by the timeout and opens a
// span when the caller's is recording. done ends both and records the
// lookup's duration and outcome.
func (s *Store) start(ctx context.Context, kind entity.Kind) (context.Context, func(error)) {
	cancel := context.CancelFunc(func() {})
	if s.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
	}
	var span trace.Span
	if s.tracer != nil && trace.SpanFromContext(ctx).IsRecording() {
		ctx, span = s.tracer.Start(ctx, "sluice.datastore.query",
			trace.WithAttributes(s.system, attribute.String("sluice.entity", string(kind))))
	}
	begin := time.Now()
	return ctx, func(err error) {
		s.metrics.query(string(kind), begin, err)
		if span != nil {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
		cancel()
	}
}

var _ store.Store = (*Store)(nil)
