// Command bareproxy is the reference point of bench/proxycpu: a bare
// net/http/httputil.ReverseProxy with a tuned Transport, the same idea as
// the perf-scripts goproxy the perf notes measured (27.8 us CPU/request
// pinned). Sluice's CPU per request is reported as a ratio to it.
//
// Usage: bareproxy -addr 127.0.0.1:19100 -upstream http://127.0.0.1:19001
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19100", "listen address")
	up := flag.String("upstream", "http://127.0.0.1:19001", "upstream base URL")
	flag.Parse()
	u, err := url.Parse(*up)
	if err != nil {
		log.Fatal(err)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		Transport:  tr,
		BufferPool: &bufPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// bufPool implements httputil.BufferPool with 32 KiB buffers.
type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufPool) Put(x []byte) { b.p.Put(&x) }
