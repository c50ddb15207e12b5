// Package bareproxy is the benchmarks' reference point: a bare
// net/http/httputil.ReverseProxy with a tuned Transport and a 32 KiB buffer
// pool, the same idea as the perf-scripts goproxy the perf notes measured
// (27.8 µs CPU/request pinned on their machine). `sluice bench` and
// bench/proxycpu measure it in the same run as the gateway, so the ratio
// between the two holds on a noisy machine where absolute figures do not.
package bareproxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// New returns the reference proxy forwarding every request to upstream,
// keeping the client's Host header.
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
