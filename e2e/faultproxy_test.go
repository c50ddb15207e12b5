package e2e

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultProxy is a TCP proxy that injects faults between a client (a node)
// and a server (PostgreSQL, an upstream): latency on every chunk, cutting
// every open connection, and refusing new ones (accepted, then reset at
// once, so that the client sees the failure without waiting for a timeout).
type faultProxy struct {
	ln     net.Listener
	target string

	latency  atomic.Int64 // ns added before each chunk is forwarded
	refusing atomic.Bool
	accepted atomic.Int64

	// mu guards conns.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startFaultProxy proxies a loopback port to target until the end of t.
func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr returns the proxy's host and port.
func (p *faultProxy) Addr() (host, port string) {
	host, port, _ = net.SplitHostPort(p.ln.Addr().String())
	return host, port
}

// SetLatency delays every chunk, in both directions, by d.
func (p *faultProxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Refuse makes the proxy reset new connections (on) or forward them (off).
func (p *faultProxy) Refuse(on bool) { p.refusing.Store(on) }

// CutAll resets every open connection and returns how many there were.
func (p *faultProxy) CutAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		reset(c)
		delete(p.conns, c)
	}
	return n
}

// Accepted returns how many connections the proxy accepted so far.
func (p *faultProxy) Accepted() int64 { return p.accepted.Load() }

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if p.refusing.Load() {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

func (p *faultProxy) pipe(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		reset(client)
		return
	}
	if !p.track(client, server) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.copy(server, client); done <- struct{}{} }()
	go func() { p.copy(client, server); done <- struct{}{} }()
	<-done
	p.untrack(client, server)
	<-done
}

// track registers both ends; it returns false (and closes them) when the
// proxy is closing.
func (p *faultProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *faultProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		reset(c)
		delete(p.conns, c)
	}
}

// copy forwards src to dst chunk by chunk, sleeping the current latency
// before each write.
func (p *faultProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					continue // drain the other direction until it ends
				}
			}
			return
		}
	}
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		reset(c)
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// reset closes c with an RST rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// TestFaultProxy checks the proxy itself against a real echo server:
// forwarding, latency, cutting and refusing.
func TestFaultProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	p := startFaultProxy(t, echo.Addr().String())
	host, port := p.Addr()
	addr := net.JoinHostPort(host, port)
	roundTrip := func(c net.Conn) (time.Duration, error) {
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 4)
		_, err := io.ReadFull(c, b)
		if err == nil && string(b) != "ping" {
			err = errors.New("echo returned " + strconv.Quote(string(b)))
		}
		return time.Since(start), err
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := roundTrip(c); err != nil {
		t.Fatalf("forwarding: %v", err)
	}
	p.SetLatency(100 * time.Millisecond)
	took, err := roundTrip(c)
	if err != nil || took < 200*time.Millisecond {
		t.Fatalf("with 100ms latency each way a round trip took %v (%v), want >= 200ms", took, err)
	}
	p.SetLatency(0)
	if n := p.CutAll(); n != 2 {
		t.Errorf("CutAll cut %d connections, want 2 (client and server side)", n)
	}
	if _, err := roundTrip(c); err == nil {
		t.Fatal("a cut connection still echoed")
	}
	p.Refuse(true)
	c2, err := net.Dial("tcp", addr)
	if err == nil {
		_, err = roundTrip(c2)
		c2.Close()
	}
	if err == nil {
		t.Fatal("a refused connection still echoed")
	}
	p.Refuse(false)
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if _, err := roundTrip(c3); err != nil {
		t.Fatalf("after Refuse(false): %v", err)
	}
}
