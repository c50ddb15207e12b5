package yield

import (
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// ready starts a goroutine blocked reading a loopback connection, makes
// its data arrive, and returns the flag it sets once it has run.
func ready(t *testing.T) *atomic.Bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	var ran atomic.Bool
	parked := make(chan struct{})
	go func() {
		close(parked)
		var b [1]byte
		if _, err := server.Read(b[:]); err == nil {
			ran.Store(true)
		}
	}()
	<-parked
	runtime.Gosched() // let it reach the read and park on the poller
	if _, err := client.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	return &ran
}

// spin keeps the P busy without blocking, so that only a yield lets the
// reader run.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

// TestNowRunsWhatThePollerHasReady: with one P, a goroutine whose socket
// became readable while the caller ran has run when Now returns.
func TestNowRunsWhatThePollerHasReady(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ran := ready(t)
	spin(time.Millisecond) // the byte is in the socket
	if ran.Load() {
		t.Skip("the reader ran without a yield (the runtime polled the network meanwhile)")
	}
	Now()
	if !ran.Load() {
		t.Fatal("the reader whose data arrived had not run when Now returned")
	}
}

// TestBudgetYields: a loop that only calls Check lets the ready reader
// run before it ends.
func TestBudgetYields(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ran := ready(t)
	var b Budget
	for end := time.Now().Add(5 * time.Millisecond); time.Now().Before(end) && !ran.Load(); {
		b.Check()
	}
	if !ran.Load() {
		t.Fatal("the reader never ran during a loop of Checks (5 ms, a yield due every 100 µs)")
	}
}

// BenchmarkNow is the cost of one yield with nothing else to run.
func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		Now()
	}
}
