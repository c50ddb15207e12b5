package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		wantErr string
	}{
		{"plain", "4242 (sluice) S 1 4242 4242 0 -1 4194560 5060 0 0 0 150 37 0 0 20 0 8 0 100 0 0", 1870 * time.Millisecond, ""},
		{"name with spaces and parens", "7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0", 70 * time.Millisecond, ""},
		{"no name", "garbage", 0, "no command name"},
		{"short", "1 (x) S 1 2 3", 0, "fields after the command name"},
		{"bad number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 4 0", 0, "bad cpu field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestCPUOfSelf burns CPU in this process and checks /proc sees it.
func TestCPUOfSelf(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn until the kernel has charged 50ms (a shared machine may give
	// this process less than a full core), bounded by 10s of wall time.
	x := 0
	for start := time.Now(); time.Since(start) < 10*time.Second; x++ {
		if x%1_000_000 == 0 {
			if now, _ := CPU(os.Getpid()); now-before >= 50*time.Millisecond {
				break
			}
		}
	}
	after, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 50*time.Millisecond {
		t.Errorf("busy loop (%d iterations) moved CPU time by %v, want >= 50ms", x, after-before)
	}
}

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name, status string
		want         int64
		wantErr      string
	}{
		{"status", "Name:\tsluice\nVmPeak:\t  900000 kB\nVmRSS:\t   45312 kB\nRssAnon:\t 30000 kB\n", 45312 << 10, ""},
		{"no VmRSS", "Name:\tkworker\nState:\tI (idle)\n", 0, "no VmRSS"},
		{"bad unit", "VmRSS:\t 12 MB\n", 0, "bad VmRSS"},
		{"bad number", "VmRSS:\t x kB\n", 0, "bad VmRSS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRSS(tt.status)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRSS error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRSS = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestRSSOfSelf(t *testing.T) {
	got, err := RSS(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if got < 1<<20 {
		t.Errorf("RSS of the test process = %d bytes, want at least 1 MiB", got)
	}
}
