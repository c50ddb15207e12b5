package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"example", "", ""},
		{"no nodes", "load_balancer: http://lb:8000\n", "nodes: at least one node is required"},
		{"no admin", "nodes:\n  - proxy: http://a:8000\n", "nodes[0].admin: required"},
		{"no proxy", "nodes:\n  - admin: http://a:8001\n", "nodes[0].proxy: required"},
		{"bad scheme", "nodes:\n  - admin: ftp://a:8001\n    proxy: http://a:8000\n", "nodes[0].admin: \"ftp://a:8001\": want http(s)://host:port"},
		{"bad metrics", "nodes:\n  - admin: http://a:8001\n    proxy: http://a:8000\n    metrics: a:8100\n", "nodes[0].metrics:"},
		{"bad load balancer", "load_balancer: lb\nnodes:\n  - admin: http://a:8001\n    proxy: http://a:8000\n", "load_balancer:"},
		{"half a client certificate", "tls:\n  client_cert: c.pem\nnodes:\n  - admin: http://a:8001\n    proxy: http://a:8000\n", "tls.client_cert and tls.client_key"},
		{"same name twice", "nodes:\n  - {admin: http://a:8001, proxy: http://a:8000}\n  - {name: node-1, admin: http://b:8001, proxy: http://b:8000}\n", `nodes[1].name: "node-1" is used twice`},
		{"unknown key", "nodes:\n  - admin: http://a:8001\n    proxy: http://a:8000\n    metric: http://a:8100/metrics\n", "field metric not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("..", "cluster.example.yaml")
			if tc.yaml != "" {
				path = filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := Load(path)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Load: %v, want an error containing %q", err, tc.err)
			case err == nil && f.Nodes[0].Name == "":
				t.Fatal("a node without a name was not named")
			}
		})
	}
}
