package cachebackends

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"128m", 128 << 20, false},
		{"512K", 512 << 10, false},
		{" 1g ", 1 << 30, false},
		{"4096", 4096, false},
		{"", 0, true},
		{"0m", 0, true},
		{"-1", 0, true},
		{"12x", 0, true},
		{"99999999g", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
