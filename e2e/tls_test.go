package e2e

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

// TestHTTPSUpstreamTrustedCA is what an operator with a private CA does:
// write the CA to a PEM file, name it in lua_ssl_trusted_certificate, and
// point an https service at the upstream. It proves the node verifies the
// upstream against that CA (200 through the proxy) and that a file holding
// no certificate stops start-up with a message naming the setting.
func TestHTTPSUpstreamTrustedCA(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("tls upstream saw " + r.URL.Path))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	a := startCluster(t, 1, "SLUICE_LUA_SSL_TRUSTED_CERTIFICATE=system,"+ca).Nodes[0]
	admin(t, a, "POST", "/services", form("name", "tls", "url", up.URL), 201)
	admin(t, a, "POST", "/services/tls/routes", form("paths[]", "/tls"), 201)
	status, body, err := a.Get(context.Background(), "/tls/hello", nil)
	if err != nil || status != 200 || string(body) != "tls upstream saw /hello" {
		t.Fatalf("GET /tls/hello = %d %q, %v; want the TLS upstream's answer", status, body, err)
	}

	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := harness.Start(ctx, harness.Options{Binary: sluiceBinary(t), Nodes: 1, Dir: badDir,
		Env: []string{"SLUICE_LUA_SSL_TRUSTED_CERTIFICATE=" + notPEM}})
	if err == nil {
		c.Stop()
		t.Fatal("a node started with lua_ssl_trusted_certificate naming a file without a certificate")
	}
	log, _ := os.ReadFile(filepath.Join(badDir, "node-1.log"))
	if !strings.Contains(string(log), "lua_ssl_trusted_certificate") || !strings.Contains(string(log), notPEM) {
		t.Fatalf("start-up error does not name the setting and the file: %s", log)
	}
}
