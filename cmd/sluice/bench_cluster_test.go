package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClusterMode(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--cluster", "c.yaml"}, true},
		{[]string{"-cluster=c.yaml", "--rounds", "3"}, true},
		{[]string{"--profile", "smoke"}, false},
		{[]string{"--out", "cluster"}, false},
	} {
		if got := clusterMode(tc.args); got != tc.want {
			t.Errorf("clusterMode(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestBenchClusterFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("nodes:\n  - {admin: http://127.0.0.1:1, proxy: http://127.0.0.1:2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--cluster", file, "--header", "no-colon"}, `"no-colon": want K:V`},
		{[]string{"--cluster", file, "--every", "1h"}, "--every needs --serve"},
		{[]string{"--cluster", file, "--load", "10"}, "--load needs load_balancer"},
		{[]string{"--cluster", file, "extra"}, `unexpected argument "extra"`},
		{[]string{"--cluster", filepath.Join(t.TempDir(), "missing.yaml")}, "cluster file:"},
	} {
		err := benchCluster(context.Background(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("bench %q: %v, want an error containing %q", tc.args, err, tc.err)
		}
	}
}
