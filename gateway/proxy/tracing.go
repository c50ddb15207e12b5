package proxy

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// startServerSpan continues the client's W3C trace, if any, in a server
// span and returns r with the span in its context.
func (p *Proxy) startServerSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := p.tracer.Start(ctx, "sluice", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.method", r.Method),
			attribute.String("http.host", r.Host),
			attribute.String("http.url", r.URL.EscapedPath()), // never the query: it may carry an API key
		))
	return r.WithContext(ctx), span
}

func endServerSpan(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.status_code", status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// injectTrace writes the W3C traceparent of the span in ctx's request into h.
func injectTrace(r *http.Request, h http.Header) {
	propagation.TraceContext{}.Inject(r.Context(), propagation.HeaderCarrier(h))
}
