//go:build !unix

package proxy

import "net"

// peekClosed cannot peek on this platform: client aborts are noticed when
// the response is written.
func peekClosed(*net.TCPConn) bool { return false }
