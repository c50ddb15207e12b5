package main

import "testing"

// TestEnvList checks --node-env: KEY=VALUE pairs accumulate, anything
// else is refused with the value named.
func TestEnvList(t *testing.T) {
	var l envList
	for _, v := range []string{"GOMAXPROCS=2", "GODEBUG=gctrace=1", "EMPTY="} {
		if err := l.Set(v); err != nil {
			t.Errorf("Set(%q) = %v", v, err)
		}
	}
	if got := l.String(); got != "GOMAXPROCS=2 GODEBUG=gctrace=1 EMPTY=" {
		t.Errorf("list = %q", got)
	}
	for _, v := range []string{"GOMAXPROCS", "=2", "A B=1", ""} {
		if err := l.Set(v); err == nil {
			t.Errorf("Set(%q) accepted", v)
		}
	}
}
