package proxy

import (
	"bufio"
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

// upgradedConn is an upstream connection that answered 101 to an upgrade
// request: send hands it over instead of pooling it.
type upgradedConn struct {
	conn    net.Conn
	br      *bufio.Reader // may hold the upgraded protocol's first bytes
	release func()        // returns br and closes conn, in the pool's count
}

// hijack proxies a protocol switch the service accepted (101), as Kong
// does: the client's connection is taken over from the server and bytes
// flow both ways until either side closes or stays silent for the
// service's read_timeout. The request went through the normal round trip
// (send), so retries, tracing and the client watch apply until then.
func (p *Proxy) hijack(x *exchange, up *upgradedConn) {
	resp := &x.ctx.Response
	x.status = fasthttp.StatusSwitchingProtocols
	resp.Header.Set("Via", p.via)
	head := append([]byte(nil), resp.Header.Header()...)
	idle := millis(x.match.Service.ReadTimeout, 60000)
	x.ctx.HijackSetNoResponse(true)
	x.ctx.Hijack(func(client net.Conn) {
		defer up.release()
		if _, err := client.Write(head); err != nil {
			return
		}
		splice(client, up.conn, up.br, idle)
	})
}

// splice copies bytes both ways between an upgraded client connection and
// the upstream's until one side closes or a client read waits longer than
// idle (upstream reads have the service's read_timeout already: its
// connection is a deadlineConn); then both close.
func splice(client, upstream net.Conn, fromUpstream io.Reader, idle time.Duration) {
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = client.Close(); _ = upstream.Close() }) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(upstream, idleReader{client, idle})
		closeBoth()
	}()
	_, _ = io.Copy(client, fromUpstream)
	closeBoth()
	<-done
}

// idleReader gives each read of c a deadline of d from now.
type idleReader struct {
	c net.Conn
	d time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(r.d))
	return r.c.Read(p)
}
