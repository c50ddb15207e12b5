package proxy

import (
	"context"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// startServerSpan continues the client's W3C trace, if any, in a server
// span that the plugins' lookups nest under (through the kit's Ctx).
func (p *Proxy) startServerSpan(x *exchange) {
	ctx := propagation.TraceContext{}.Extract(context.Background(), headerCarrier{&x.ctx.Request.Header})
	x.pc.Ctx, x.span = p.tracer.Start(ctx, "sluice", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.method", x.method),
			attribute.String("http.host", x.host),
			attribute.String("http.url", x.path), // never the query: it may carry an API key
		))
}

func (p *Proxy) endServerSpan(x *exchange) {
	x.span.SetAttributes(attribute.Int("http.status_code", x.status))
	if x.status >= fasthttp.StatusInternalServerError {
		x.span.SetStatus(codes.Error, fasthttp.StatusMessage(x.status))
	}
	x.span.End()
}

// injectTrace writes the W3C traceparent of the span in ctx into h.
func injectTrace(ctx context.Context, h *fasthttp.RequestHeader) {
	propagation.TraceContext{}.Inject(ctx, headerCarrier{h})
}

// headerCarrier adapts a fasthttp request header to the OpenTelemetry
// propagators.
type headerCarrier struct{ h *fasthttp.RequestHeader }

func (c headerCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c headerCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c headerCarrier) Keys() []string {
	var keys []string
	for k := range c.h.All() {
		keys = append(keys, string(k))
	}
	return keys
}

var _ propagation.TextMapCarrier = headerCarrier{}
