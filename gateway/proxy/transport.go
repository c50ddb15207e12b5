package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// timeouts selects a round tripper: timeouts are properties of the dialer
// and of the client, so services sharing them share a connection pool.
type timeouts struct {
	tls                  bool
	connect, write, read int // ms, as in the service entity
}

// roundTripper is what the proxy needs of an upstream client.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

// transports holds one upstream client per distinct timeouts: the
// synchronous h1Client for http services, a tuned http.Transport for https.
type transports struct {
	opts Options
	bufs *sync.Pool
	m    atomic.Pointer[map[timeouts]roundTripper] // copy on write
	// mu serializes writers of m.
	mu sync.Mutex
}

func newTransports(opts Options, bufs *sync.Pool) *transports {
	t := &transports{opts: opts, bufs: bufs}
	t.m.Store(&map[timeouts]roundTripper{})
	return t
}

// get returns the client for s, creating it on first use.
func (t *transports) get(s *entity.Service) roundTripper {
	k := timeouts{tls: s.Protocol == "https", connect: s.ConnectTimeout, write: s.WriteTimeout, read: s.ReadTimeout}
	if k.tls {
		k.write = 0 // http.Transport has no write timeout: not a reason for another pool
	}
	if tr := (*t.m.Load())[k]; tr != nil {
		return tr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if tr := old[k]; tr != nil {
		return tr
	}
	tr := t.newClient(k)
	next := make(map[timeouts]roundTripper, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = tr
	t.m.Store(&next)
	return tr
}

func (t *transports) newClient(k timeouts) roundTripper {
	perHost := t.opts.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = 1024
	}
	idle := t.opts.IdleConnTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	dialer := net.Dialer{Timeout: millis(k.connect, 60000), KeepAlive: 30 * time.Second}
	if !k.tls {
		return &h1Client{
			dialer:       dialer,
			writeTimeout: millis(k.write, 60000),
			readTimeout:  millis(k.read, 60000),
			maxIdle:      perHost,
			idleTimeout:  idle,
			bufs:         t.bufs,
		}
	}
	return &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: t.opts.UpstreamRootCAs, MinVersion: tls.VersionTLS12},
		MaxIdleConns:          perHost * 4,
		MaxIdleConnsPerHost:   perHost,
		IdleConnTimeout:       idle,
		ResponseHeaderTimeout: millis(k.read, 60000),
		TLSHandshakeTimeout:   millis(k.connect, 60000),
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

func (t *transports) closeIdle() {
	for _, tr := range *t.m.Load() {
		tr.CloseIdleConnections()
	}
}

// millis converts a timeout in ms, using def when it is not positive.
func millis(ms, def int) time.Duration {
	if ms <= 0 {
		ms = def
	}
	return time.Duration(ms) * time.Millisecond
}
