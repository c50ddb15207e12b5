package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/report"
)

// TestMTLS serves GET / over TLS, requiring a client certificate signed by
// a test CA, and reads it with the cluster file's tls settings: with
// ca, client_cert and client_key it works; without the client certificate
// the server refuses the handshake.
func TestMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil, true)
	newCert(t, dir, "server", ca, caKey, false)
	newCert(t, dir, "client", ca, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Kong-Admin-Token") != "t0ken" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"tagline":"Welcome to kong","version":"3.9.0","configuration":{"database":"postgres","db_update_frequency":5}}`))
	}))
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	for _, tc := range []struct {
		name string
		tls  TLS
		ok   bool
	}{
		{"mTLS", TLS{CA: filepath.Join(dir, "ca.pem"), ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem")}, true},
		{"no client certificate", TLS{CA: filepath.Join(dir, "ca.pem")}, false},
		{"system roots", TLS{ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &File{AdminToken: "t0ken", TLS: tc.tls}
			tr, err := f.transport()
			if err != nil {
				t.Fatal(err)
			}
			a := &admin{node: "n", base: srv.URL, token: f.AdminToken, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
			n := report.ClusterNode{Name: "n"}
			err = discover(context.Background(), a, &n)
			if tc.ok && (err != nil || n.Product != "kong" || n.DBUpdateFrequencyS != 5) {
				t.Fatalf("discover = %v, %+v; want Kong at 5 s", err, n)
			}
			if !tc.ok && err == nil {
				t.Fatal("discover succeeded without the client certificate or the CA")
			}
		})
	}
	f := &File{TLS: TLS{CA: filepath.Join(dir, "client-key.pem")}}
	if _, err := f.transport(); err == nil || !strings.Contains(err.Error(), "tls.ca") {
		t.Errorf("a CA file without a certificate: %v, want an error naming tls.ca", err)
	}
}

// newCert writes <name>.pem and <name>-key.pem into dir: a CA when isCA,
// else a certificate for 127.0.0.1 signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", kb)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
