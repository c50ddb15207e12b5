// Package testenv lets tests that need a real service (PostgreSQL,
// Cassandra, Redis, Prometheus, promtool, the reference material) say so in
// one way: skip with instructions on a developer's machine, fail under
// CI=true, where .ci/run provides every one of them.
package testenv

import (
	"os"
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
