// Package testenv lets tests that need a real service (PostgreSQL,
// Cassandra, Redis, Prometheus, promtool, the reference material) say so in
// one way: skip with instructions on a developer's machine, fail under
// CI=true, where .ci/run provides every one of them.
package testenv

import (
	"net"
	"os"
	"strconv"
	"testing"
)

// Missing skips t because what is not available, saying how to provide it;
// under CI=true it fails t instead, so CI cannot skip silently.
func Missing(t testing.TB, what, howTo string) {
	t.Helper()
	msg := what + " is not available; " + howTo
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Var returns the environment variable name, or calls Missing when it is
// unset.
func Var(t testing.TB, name, howTo string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, name, howTo)
	}
	return v
}

// HostPort reads the environment variable name as host:port, calling
// Missing when it is unset and failing t when it is malformed.
func HostPort(t testing.TB, name, howTo string) (string, int) {
	t.Helper()
	addr := Var(t, name, howTo)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%q: want host:port: %v", name, addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s=%q: bad port: %v", name, addr, err)
	}
	return host, p
}
