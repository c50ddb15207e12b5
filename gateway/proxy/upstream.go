package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// poolKey selects an upstream connection pool: an address, TLS or not,
// the client certificate presented, and the service's timeouts, which are
// properties of the connections.
type poolKey struct {
	addr                 string
	tls                  bool
	sni                  string
	cert                 [sha256.Size]byte // ClientCertificate.Digest; zero for none
	connect, write, read int               // ms, as in the service entity
}

// upstreams holds one fasthttp.HostClient per poolKey. Every client streams
// response bodies and dials connections whose reads and writes each get
// the service's read_timeout and write_timeout (Kong's meaning: the time
// between two successive reads or writes).
type upstreams struct {
	opts  Options
	clock *coarseClock
	m     atomic.Pointer[map[poolKey]*fasthttp.HostClient] // copy on write
	// mu serializes writers of m.
	mu sync.Mutex
}

func newUpstreams(opts Options, clock *coarseClock) *upstreams {
	u := &upstreams{opts: opts, clock: clock}
	u.m.Store(&map[poolKey]*fasthttp.HostClient{})
	return u
}

// client returns the client for service s at a, creating it on first use.
// a caches it, so the request path looks it up once per service entity.
func (u *upstreams) client(a *svcAddr, s *entity.Service) *fasthttp.HostClient {
	if hc := a.client.Load(); hc != nil {
		return hc
	}
	k := poolKey{addr: a.dial, tls: a.tls, connect: s.ConnectTimeout, write: s.WriteTimeout, read: s.ReadTimeout}
	if a.tls {
		k.sni = s.Host
	}
	if a.cert != nil {
		k.cert = a.cert.Digest
	}
	hc := (*u.m.Load())[k]
	if hc == nil {
		hc = u.create(k, a.cert)
	}
	a.client.Store(hc)
	return hc
}

func (u *upstreams) create(k poolKey, cert *ClientCertificate) *fasthttp.HostClient {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.m.Load()
	if hc := old[k]; hc != nil {
		return hc
	}
	hc := u.newClient(k, cert)
	next := make(map[poolKey]*fasthttp.HostClient, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = hc
	u.m.Store(&next)
	return hc
}

func (u *upstreams) newClient(k poolKey, cert *ClientCertificate) *fasthttp.HostClient {
	connect := millis(k.connect, 60000)
	d := upstreamDialer{
		dialer: net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second},
		clock:  u.clock,
		read:   millis(k.read, 60000),
		write:  millis(k.write, 60000),
	}
	hc := &fasthttp.HostClient{
		Addr:                k.addr,
		IsTLS:               k.tls,
		Dial:                d.dial,
		MaxConns:            u.opts.MaxConnsPerHost,
		MaxConnWaitTimeout:  connect,
		MaxIdleConnDuration: u.opts.IdleConnTimeout,
		// The proxy makes its own round trips on the client's pool
		// (send), with its own retries (roundTrip).
		MaxIdemponentCallAttempts: 1,
	}
	if k.tls {
		hc.TLSConfig = &tls.Config{RootCAs: u.opts.UpstreamRootCAs, MinVersion: tls.VersionTLS12, ServerName: k.sni}
		if cert != nil {
			hc.TLSConfig.Certificates = []tls.Certificate{cert.Pair}
		}
	}
	return hc
}

func (u *upstreams) closeIdle() {
	for _, hc := range *u.m.Load() {
		hc.CloseIdleConnections()
	}
}

// dialError marks a failure to connect: nothing was sent, so the request
// may always be tried again.
type dialError struct{ err error }

func (e *dialError) Error() string { return "proxy: cannot connect to the upstream: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// upstreamDialer connects to an upstream with connect_timeout and returns
// a connection with per-operation read and write timeouts.
type upstreamDialer struct {
	dialer      net.Dialer
	clock       *coarseClock
	read, write time.Duration
}

func (d upstreamDialer) dial(addr string) (net.Conn, error) {
	c, err := d.dialer.Dial("tcp", addr)
	if err != nil {
		return nil, &dialError{err}
	}
	return &deadlineConn{Conn: c, clock: d.clock, read: d.read, write: d.write}, nil
}

// deadlineConn gives each Read (Write) a deadline at least read (write)
// from now; 0 leaves the deadline to the caller. It is the "between two
// reads" timeout of nginx and Kong, which a deadline per request cannot
// express. Moving a deadline costs more than the rest of a small read, so
// it moves only once an eighth of the timeout has passed, to now +
// 9/8 of the timeout: a silent peer is cut off after between 1 and 9/8 of
// the timeout, never before.
//
// A caller's own SetReadDeadline or SetWriteDeadline (fasthttp's) is
// overridden by the next Read or Write.
type deadlineConn struct {
	net.Conn
	clock           *coarseClock
	read, write     time.Duration
	readAt, writeAt time.Time // the deadlines in force
	uses            int       // requests sent on an upstream connection
}

// NetConn returns the wrapped connection.
func (c *deadlineConn) NetConn() net.Conn { return c.Conn }

func (c *deadlineConn) Read(p []byte) (int, error) {
	if c.read > 0 {
		if err := extend(c.Conn.SetReadDeadline, c.clock, &c.readAt, c.read); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.write > 0 {
		if err := extend(c.Conn.SetWriteDeadline, c.clock, &c.writeAt, c.write); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// SetReadDeadline lets a caller set a deadline; the next Read sets its own.
func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.readAt = time.Time{}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline lets a caller set a deadline; the next Write sets its own.
func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.writeAt = time.Time{}
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines; the next Read and Write set their own.
func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.readAt, c.writeAt = time.Time{}, time.Time{}
	return c.Conn.SetDeadline(t)
}

// extend moves the deadline *at to now + 9/8·d + coarseTick when less than
// d remains (now read from clock, up to coarseTick behind).
func extend(set func(time.Time) error, clock *coarseClock, at *time.Time, d time.Duration) error {
	now := clock.Now()
	if at.Sub(now) >= d+coarseTick {
		return nil
	}
	*at = now.Add(d + d/8 + coarseTick)
	return set(*at)
}

// millis converts a timeout in ms, using def when it is not positive.
func millis(ms, def int) time.Duration {
	if ms <= 0 {
		ms = def
	}
	return time.Duration(ms) * time.Millisecond
}
