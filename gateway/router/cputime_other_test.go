//go:build !unix

package router

import "testing"

// reportCPU runs fn as the benchmark loop. CPU time is only measured on
// unix.
func reportCPU(b *testing.B, fn func()) {
	for b.Loop() {
		fn()
	}
}
