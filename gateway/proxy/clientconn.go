package proxy

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Listener wraps a proxy listener so that its connections keep nginx's
// client timeouts: the request head (client_header_timeout, from the
// connection's start or a request's first byte), an idle keep-alive
// connection (keepalive_timeout), and every write (send_timeout, from the
// write's start: a client that stops reading a long response is dropped,
// one that keeps reading is not). The Server's ConnState hook moves a
// connection between its head and idle timeouts; serve it with Server.
func (p *Proxy) Listener(ln net.Listener) net.Listener {
	return clientListener{Listener: ln, p: p}
}

type clientListener struct {
	net.Listener
	p *Proxy
}

func (l clientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &clientConn{deadlineConn: deadlineConn{Conn: c, clock: l.p.clock, write: l.p.opts.SendTimeout},
		ip: addrIP(c.RemoteAddr())}, nil
}

// clientConn is a client's connection. Its read deadline is set lazily:
// SetReadDeadline records the deadline wanted and the next Read puts it in
// force, unless the one in force is no earlier and at most an eighth of
// the timeout (plus coarseTick) later. fasthttp sets a read deadline twice
// per request (idle, then head) and most heads arrive in one read, so most
// requests then move no deadline at all: moving one costs a runtime timer
// update, reading the clock for it two vDSO calls. A timeout fires
// between its value and 9/8 of it, as the upstream's do (deadlineConn). A
// deadline in the past (an interrupt) or none at all takes effect at
// once.
type clientConn struct {
	deadlineConn               // the write side (send_timeout)
	want, inForce atomic.Int64 // read deadlines, unix ns; 0: none
	ip            string       // the client's address, formatted once
}

func (c *clientConn) Read(p []byte) (int, error) {
	if want, in := c.want.Load(), c.inForce.Load(); want != in {
		if err := c.applyRead(want, in); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// applyRead puts the wanted read deadline in force unless the one in force
// is close enough.
func (c *clientConn) applyRead(want, in int64) error {
	t := int64(0)
	if want != 0 {
		slack := (want-c.clock.Now().UnixNano())/8 + int64(coarseTick)
		if in >= want && in <= want+slack {
			return nil
		}
		t = want + slack
	}
	c.inForce.Store(t)
	if t == 0 {
		return c.Conn.SetReadDeadline(time.Time{})
	}
	return c.Conn.SetReadDeadline(time.Unix(0, t))
}

// SetReadDeadline records t for the next Read; a zero t or one in the past
// takes effect at once (it may interrupt a Read in progress).
func (c *clientConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() || t.Before(c.clock.Now()) {
		n := int64(0)
		if !t.IsZero() {
			n = t.UnixNano()
		}
		c.want.Store(n)
		c.inForce.Store(n)
		return c.Conn.SetReadDeadline(t)
	}
	c.want.Store(t.UnixNano())
	return nil
}

// SetDeadline sets both deadlines.
func (c *clientConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.deadlineConn.SetWriteDeadline(t)
}

// wantRead records a read deadline d from now (the coarse clock's).
func (c *clientConn) wantRead(d time.Duration) {
	c.want.Store(c.clock.Now().Add(d).UnixNano())
}

// connState is the Server's ConnState hook: a new connection and a
// request's first byte start the head's timeout, a finished request the
// keep-alive timeout. fasthttp's own ReadTimeout and IdleTimeout stay
// off: they read the clock and move the deadline twice per request.
func (p *Proxy) connState(nc net.Conn, state fasthttp.ConnState) {
	c, ok := unwrap[*clientConn](nc)
	if !ok {
		return
	}
	switch state {
	case fasthttp.StateNew, fasthttp.StateActive:
		c.wantRead(p.opts.HeaderTimeout)
	case fasthttp.StateIdle:
		c.wantRead(p.opts.KeepaliveTimeout)
	}
}
