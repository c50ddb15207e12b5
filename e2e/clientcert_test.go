package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServiceClientCertificate is mutual TLS to an upstream: an upstream
// that requires a client certificate from its CA, an https service whose
// client_certificate is a certificate entity, and two nodes on one
// datastore. Both nodes present the certificate; replacing the
// certificate's pair on one node makes the other present the new one
// (cluster event, route table rebuild); deleting a certificate a service
// uses is refused as Kong does.
func TestServiceClientCertificate(t *testing.T) {
	caCert, caKey := newCA(t)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(caCert)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("client " + r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	up.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	up.StartTLS()
	t.Cleanup(up.Close)
	trusted := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(trusted, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	c := startCluster(t, 2, "SLUICE_LUA_SSL_TRUSTED_CERTIFICATE="+trusted)
	a, b := c.Nodes[0], c.Nodes[1]
	cert1, key1 := issue(t, caCert, caKey, "client-one")
	created := admin(t, a, "POST", "/certificates", form("cert", cert1, "key", key1), 201)
	certID := jsonField(t, created, "id")
	admin(t, a, "POST", "/services", form("name", "mtls", "url", up.URL, "client_certificate.id", certID), 201)
	admin(t, a, "POST", "/services/mtls/routes", form("name", "mtls-route", "paths[]", "/mtls"), 201)

	presented := func(n int) string {
		status, body, err := c.Nodes[n].Get(context.Background(), "/mtls", nil)
		if err != nil || status != 200 {
			return ""
		}
		return string(body)
	}
	for i := range c.Nodes {
		waitFor(t, 15*time.Second, "node "+c.Nodes[i].Name+" presents client-one", func() bool { return presented(i) == "client client-one" })
	}

	cert2, key2 := issue(t, caCert, caKey, "client-two")
	admin(t, a, "PATCH", "/certificates/"+certID, form("cert", cert2, "key", key2), 200)
	if got := presented(0); got != "client client-two" {
		t.Fatalf("node A after the PATCH: %q, want client client-two", got)
	}
	// Node B learns of the change from the cluster event (db_update_frequency).
	waitFor(t, 15*time.Second, "node B presents client-two", func() bool { return presented(1) == "client client-two" })

	admin(t, b, "DELETE", "/certificates/"+certID, nil, 400)
	admin(t, b, "DELETE", "/routes/mtls-route", nil, 204)
	admin(t, b, "DELETE", "/services/mtls", nil, 204)
	admin(t, b, "DELETE", "/certificates/"+certID, nil, 204)
}

// newCA returns a self-signed CA certificate and its key.
func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issue returns a client certificate for cn signed by the CA, and its key,
// in PEM.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
}
