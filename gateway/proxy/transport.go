package proxy

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// timeouts selects a transport: connect and read timeouts are properties of
// the dialer and of the transport, so services sharing them share a pool.
type timeouts struct {
	connect, read int // ms, as in the service entity
}

// transports holds one tuned http.Transport per distinct timeouts.
type transports struct {
	opts Options
	m    atomic.Pointer[map[timeouts]*http.Transport] // copy on write
	// mu serializes writers of m.
	mu sync.Mutex
}

func newTransports(opts Options) *transports {
	t := &transports{opts: opts}
	t.m.Store(&map[timeouts]*http.Transport{})
	return t
}

// get returns the transport for s's timeouts, creating it on first use.
func (t *transports) get(s *entity.Service) *http.Transport {
	k := timeouts{connect: s.ConnectTimeout, read: s.ReadTimeout}
	if tr := (*t.m.Load())[k]; tr != nil {
		return tr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if tr := old[k]; tr != nil {
		return tr
	}
	tr := t.newTransport(k)
	next := make(map[timeouts]*http.Transport, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = tr
	t.m.Store(&next)
	return tr
}

func (t *transports) newTransport(k timeouts) *http.Transport {
	perHost := t.opts.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = 1024
	}
	idle := t.opts.IdleConnTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	return &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   millis(k.connect, 60000),
			KeepAlive: 30 * time.Second,
		}).DialContext,
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
