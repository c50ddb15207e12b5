package proxy

import (
	"net"
	"sync"
	"time"
)

// clientWatch notices a client that goes away while the upstream is still
// working on its request, and then closes the upstream connection, as
// nginx does (499): the upstream sees the request cancelled, and nothing
// keeps running for nobody. Most calls end before watchDelay and cost a
// timer reset; a longer call gets a goroutine that waits, without
// consuming a byte, until the client's connection is readable: a close
// ends the call, data (a pipelined request) ends the watch.
type clientWatch struct {
	timer *time.Timer
	done  chan struct{} // the watch goroutine returned

	// mu guards the fields below, shared by the request's goroutine and
	// the watch goroutine.
	mu       sync.Mutex
	client   net.Conn // the client's connection, for the watch
	peeking  *net.TCPConn
	upstream net.Conn // the upstream connection of the try in flight
	gone     bool     // the client closed its connection
	finished bool     // the call ended: the watch must stop
}

func (w *clientWatch) init() {
	w.done = make(chan struct{}, 1)
	w.timer = time.AfterFunc(time.Hour, w.watch)
	w.timer.Stop()
}

// start arms the watch for a call on client's behalf.
func (w *clientWatch) start(client net.Conn) {
	w.mu.Lock()
	w.client, w.peeking, w.upstream, w.gone, w.finished = client, nil, nil, false, false
	w.mu.Unlock()
	w.timer.Reset(watchDelay)
}

// stop ends the watch and waits for its goroutine, if it started.
func (w *clientWatch) stop() {
	if w.timer.Stop() {
		return
	}
	w.mu.Lock()
	w.finished = true
	peeking, client := w.peeking != nil, w.client
	w.mu.Unlock()
	if peeking {
		// Interrupts the peek. Set through the wrappers, so that the
		// clientConn knows its deadline changed; the server sets its own
		// next.
		_ = client.SetReadDeadline(aLongTimeAgo)
	}
	<-w.done
}

// hold records c as the connection of the try in flight; false when the
// client is gone already.
func (w *clientWatch) hold(c net.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.upstream = c
	return !w.gone
}

// release forgets the try's connection.
func (w *clientWatch) release() {
	w.mu.Lock()
	w.upstream = nil
	w.mu.Unlock()
}

// isGone reports whether the client went away during the call.
func (w *clientWatch) isGone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone
}

// watch runs on the timer's goroutine.
func (w *clientWatch) watch() {
	defer func() { w.done <- struct{}{} }()
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return
	}
	tcp := tcpConn(w.client)
	w.peeking = tcp
	w.mu.Unlock()
	if tcp == nil || !peekClosed(tcp) {
		return
	}
	w.mu.Lock()
	w.gone = true
	if w.upstream != nil {
		_ = w.upstream.Close()
	}
	w.mu.Unlock()
}

// tcpConn unwraps c (our wrappers, TLS) to its TCP connection, or nil.
func tcpConn(c net.Conn) *net.TCPConn {
	tcp, _ := unwrap[*net.TCPConn](c)
	return tcp
}

// unwrap returns the first connection of type T in c's chain of wrappers
// that expose NetConn (ours, the node's, crypto/tls).
func unwrap[T net.Conn](c net.Conn) (T, bool) {
	for c != nil {
		if v, ok := c.(T); ok {
			return v, true
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	var zero T
	return zero, false
}

// aLongTimeAgo is a deadline that makes a blocked read return.
var aLongTimeAgo = time.Unix(1, 0)
