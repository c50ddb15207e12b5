package admin

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Traced runs h inside a server span named name+" "+method that continues
// the caller's W3C trace (traceparent), so that an Admin API write and the
// invalidation events it emits (which carry its traceparent) share one
// trace. The span records http.method, http.target and http.status_code,
// and is an error for a 5xx answer. Scrapes of /metrics (Options.Metrics)
// are not traced: a trace per scrape would drown the Admin API's. With no
// tracer provider h is returned as is.
func Traced(tp trace.TracerProvider, name string, h http.Handler) http.Handler {
	if tp == nil {
		return h
	}
	tracer := tp.Tracer("github.com/sluice-gw/sluice/gateway/admin")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			h.ServeHTTP(w, r)
			return
		}
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, name+" "+r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.method", r.Method), attribute.String("http.target", r.URL.Path)))
		defer span.End()
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.status_code", sw.status))
		if sw.status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
