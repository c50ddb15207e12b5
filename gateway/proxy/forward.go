package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// bufSize is the size of the pooled body copy buffers.
const bufSize = 32 << 10

// forward sends the request to the matched service and streams the
// response back. Every failure goes through errorHandler.
func (p *Proxy) forward(st *state) {
	r, m := st.pc.R, st.match
	svc := m.Service
	removeHopHeaders(r.Header)
	p.setForwarded(&st.pc, r.Header, r, st.path, m)

	if svc.Host == "" {
		p.errorHandler(st, errNoUpstream)
		return
	}
	a := p.addrOf(svc)
	out := r.WithContext(r.Context())
	out.URL = &url.URL{Scheme: a.scheme, Host: a.dial, Opaque: m.UpstreamPath(st.path), RawQuery: r.URL.RawQuery}
	out.Host = a.host
	if m.Route.PreserveHost {
		out.Host = r.Host
	}
	out.RequestURI = ""
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil // lets the transport retry on a reused connection
	}

	resp, err := p.roundTrip(st, out)
	if err != nil {
		p.errorHandler(st, err)
		return
	}
	defer resp.Body.Close()
	p.writeResponse(st, resp)
}

// roundTrip sends out, retrying up to service.retries times when nothing
// was sent (connection failures) or when the method is idempotent and the
// body can be sent again.
func (p *Proxy) roundTrip(st *state, out *http.Request) (*http.Response, error) {
	tr := p.transports.get(st.match.Service)
	tries := max(st.match.Service.Retries, 0) + 1
	for try := 1; ; try++ {
		st.sent = time.Now()
		resp, err := p.try(tr, out, try)
		if err == nil {
			st.upstream = time.Since(st.sent)
			return resp, nil
		}
		if try >= tries || out.Context().Err() != nil || !retryable(out, err) {
			return nil, err
		}
		if out.Body != nil && out.GetBody != nil {
			if out.Body, err = out.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// try is one upstream attempt, traced as a client span when tracing is on.
func (p *Proxy) try(tr roundTripper, out *http.Request, n int) (*http.Response, error) {
	if !p.tracing {
		return tr.RoundTrip(out)
	}
	ctx, span := p.tracer.Start(out.Context(), "sluice.balancer", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int("try_count", n), attribute.String("net.peer.name", out.URL.Host)))
	defer span.End()
	out = out.WithContext(ctx)
	injectTrace(out, out.Header)
	resp, err := tr.RoundTrip(out)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "upstream failure")
	} else {
		span.SetAttributes(attribute.Int("http.status_code", resp.StatusCode))
	}
	return resp, err
}

// retryable reports whether a failed try may be repeated: always when the
// connection could not be made (nothing was sent), otherwise only for an
// idempotent method whose body is empty or replayable.
func retryable(out *http.Request, err error) bool {
	replayable := out.Body == nil || out.Body == http.NoBody || out.GetBody != nil
	if !replayable {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	switch out.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// writeResponse copies the upstream response to the client with Kong's
// latency headers.
func (p *Proxy) writeResponse(st *state, resp *http.Response) {
	w := st.pc.W
	h := w.Header()
	p.copyResponseHeader(&st.pc, h, resp.Header)
	h["X-Kong-Upstream-Latency"] = st.pc.Values(strconv.FormatInt(st.upstream.Milliseconds(), 10))
	h["X-Kong-Proxy-Latency"] = st.pc.Values(strconv.FormatInt(st.sent.Sub(st.start).Milliseconds(), 10))
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	st.pc.Status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)
	if err := p.copyBody(w, resp.Body, resp.ContentLength == -1, &st.pc.BodyBytes); err != nil {
		// The status line is gone: the only way left to tell the client
		// the body is incomplete is to abort the connection, as
		// httputil.ReverseProxy does. net/http recovers this sentinel.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

// copyBody streams src to w, flushing after each write when stream is set
// (responses of unknown length, such as server-sent events), and adds the
// bytes written to *written. It returns a read error from src; a client
// write error only stops the copy.
func (p *Proxy) copyBody(w http.ResponseWriter, src io.Reader, stream bool, written *int64) error {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	flusher, _ := w.(http.Flusher)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			*written += int64(m)
			if werr != nil {
				return nil
			}
			if stream && flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
