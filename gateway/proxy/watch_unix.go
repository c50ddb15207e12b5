//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// peekClosed waits until c is readable and reports whether that is
// because the peer closed it. It reads nothing: a byte waiting stays for
// the server.
func peekClosed(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
			return false // wait for readability
		}
		closed = rerr != nil || n == 0
		return true
	})
	return err == nil && closed
}

// peekNow reports, without waiting and without reading, whether c has
// bytes waiting (data) or its peer has closed it (closed).
func peekNow(c *net.TCPConn) (data, closed bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		case rerr != nil || n == 0:
			closed = true
		default:
			data = true
		}
		return true // never wait
	})
	return data, closed
}
