// Package bareproxy holds the benchmarks' reference points, bare Go
// reverse proxies without plugins, routing or a datastore, one per HTTP
// engine: New, a net/http/httputil.ReverseProxy with a tuned Transport and
// a 32 KiB buffer pool (the perf notes' goproxy), and NewFastHTTP, a
// fasthttp server forwarding through a fasthttp.HostClient (the perf
// notes' fasthttpproxy). The engine sets the floor: perf.md §0 measured
// the fasthttp one at 1.2x nginx's CPU per request and the httputil one at
// 2.5x, pinned on one CPU. `sluice bench` and bench/proxycpu measure them
// in the same run as the gateway, so the ratios between them hold on a
// noisy machine where absolute figures do not.
package bareproxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// New returns the httputil reference proxy's handler, for a net/http
// server: every request goes to upstream, keeping the client's Host header.
// The handler is safe for concurrent use.
func New(upstream *url.URL) http.Handler {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host
		},
		Transport:  tr,
		BufferPool: &bufPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
}

// bufPool implements httputil.BufferPool with 32 KiB buffers.
type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufPool) Put(x []byte) { b.p.Put(&x) }
