//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import "syscall"

// alive reports whether the upstream has not closed pc while it was idle,
// and sent nothing since: a peek that cannot block finds nothing to read.
func (pc *h1Conn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	sc, ok := pc.Conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait: "would block" is the answer wanted
	})
	return err == nil && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
}
