package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// isUpgrade reports whether the request asks to switch protocols
// (WebSocket and the like): Connection: upgrade and an Upgrade header.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return h.ConnectionUpgrade() && len(h.Peek("Upgrade")) > 0
}

// upgrade proxies a protocol switch, as Kong does: the request goes to
// the service on a connection of its own; when the service answers 101,
// the client's connection is taken over from the server and bytes flow
// both ways until either side closes or stays silent for the service's
// read_timeout. Any other answer is forwarded as a normal response.
func (p *Proxy) upgrade(x *exchange, a *svcAddr) {
	svc := x.match.Service
	d := upstreamDialer{dialer: net.Dialer{Timeout: millis(svc.ConnectTimeout, 60000)}, clock: p.clock,
		read: millis(svc.ReadTimeout, 60000), write: millis(svc.WriteTimeout, 60000)}
	conn, err := d.dial(a.dial)
	if err == nil && a.tls {
		conn, err = p.tlsClient(conn, svc.Host, d.dialer.Timeout)
	}
	if err != nil {
		p.upstreamFailed(x, err)
		return
	}
	x.sent = time.Now()
	br := bufio.NewReader(conn)
	bw := bufio.NewWriter(conn)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err = x.ctx.Request.Write(bw); err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = resp.Header.Read(br)
	}
	if err != nil {
		_ = conn.Close()
		p.upstreamFailed(x, err)
		return
	}
	x.upstream = time.Since(x.sent)
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		err = resp.ReadBody(br, 0)
		_ = conn.Close()
		if err != nil {
			p.upstreamFailed(x, err)
			return
		}
		resp.CopyTo(&x.ctx.Response)
		p.respond(x)
		return
	}
	x.status = fasthttp.StatusSwitchingProtocols
	resp.Header.Set("Via", p.via)
	head := append([]byte(nil), resp.Header.Header()...)
	idle := d.read
	x.ctx.HijackSetNoResponse(true)
	x.ctx.Hijack(func(client net.Conn) {
		if _, err := client.Write(head); err != nil {
			_ = conn.Close()
			return
		}
		splice(client, conn, br, idle)
	})
}

// tlsClient runs a TLS handshake on conn for server name host.
func (p *Proxy) tlsClient(conn net.Conn, host string, timeout time.Duration) (net.Conn, error) {
	tc := tls.Client(conn, &tls.Config{RootCAs: p.opts.UpstreamRootCAs, MinVersion: tls.VersionTLS12, ServerName: host})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("proxy: TLS handshake with the upstream: %w", err)
	}
	return tc, nil
}

// splice copies bytes both ways between an upgraded client connection and
// the upstream's (whose first bytes may sit in upBuf) until one side
// closes or a read waits longer than idle; then both close.
func splice(client, upstream net.Conn, upBuf *bufio.Reader, idle time.Duration) {
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = client.Close(); _ = upstream.Close() }) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(upstream, idleReader{client, idle})
		closeBoth()
	}()
	_, _ = io.Copy(client, idleReader{readerConn{upBuf, upstream}, idle})
	closeBoth()
	<-done
}

// readerConn reads through a buffered reader but sets deadlines on the
// connection underneath.
type readerConn struct {
	r io.Reader
	net.Conn
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// idleReader gives each read of c a deadline of d from now.
type idleReader struct {
	c net.Conn
	d time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(r.d))
	return r.c.Read(p)
}
