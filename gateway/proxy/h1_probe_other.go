//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package proxy

// alive cannot peek without blocking on this system: a closed connection
// shows when the request is sent, and replayable requests are sent again.
func (pc *h1Conn) alive() bool { return pc.br.Buffered() == 0 }
