//go:build !unix

package proxy

import "net"

// peekClosed cannot peek on this platform: client aborts are noticed when
// the response is written.
func peekClosed(*net.TCPConn) bool { return false }

// peekNow cannot peek on this platform: it reports nothing.
func peekNow(*net.TCPConn) (data, closed bool) { return false, false }
