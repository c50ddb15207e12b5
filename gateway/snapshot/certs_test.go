package snapshot

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// selfSigned returns a certificate entity holding a fresh key pair.
func selfSigned(t *testing.T, id, cn string) *entity.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &entity.Certificate{ID: id,
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))}
}

// TestClientCertificates: the certificates services reference reach the
// proxy at start, when a service starts referencing one, when one is
// replaced (certificate:<id> alone) and leave when no service references
// them, all without a full rebuild.
func TestClientCertificates(t *testing.T) {
	const c1, s1 = "00000000-0000-4000-8003-000000000001", "00000000-0000-4000-8000-000000000001"
	st := openStore(t, "")
	f := newFixture(t, st)
	rebuilds := func() float64 { return testutil.ToFloat64(f.s.routes.m.rebuilds) }
	served := func() *entity.Certificate {
		cs := f.out.certs.Load()
		if cs == nil || (*cs)[c1] == nil {
			return nil
		}
		return &entity.Certificate{Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: (*cs)[c1].Pair.Certificate[0]}))}
	}
	cn := func(c *entity.Certificate) string {
		b, _ := pem.Decode([]byte(c.Cert))
		x, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return x.Subject.CommonName
	}

	f.write(t, store.OpInsert, selfSigned(t, c1, "first"))
	if served() != nil {
		t.Fatal("a certificate no service references was handed to the proxy")
	}
	s := svc(s1, "up")
	s.Protocol = "https"
	s.Port = 443
	s.ClientCertificate = &entity.Ref{ID: c1}
	f.write(t, store.OpInsert, s)
	if c := served(); c == nil || cn(c) != "first" {
		t.Fatalf("after a service referenced it: certificate %v, want the one named first", c)
	}
	f.write(t, store.OpUpdate, selfSigned(t, c1, "second"))
	if c := served(); c == nil || cn(c) != "second" {
		t.Fatalf("after the certificate was replaced: %v, want the one named second", c)
	}
	s.ClientCertificate = nil
	f.write(t, store.OpUpdate, s)
	if served() != nil {
		t.Error("a certificate no service references any more is still handed to the proxy")
	}
	if rebuilds() != 1 {
		t.Errorf("%v rebuilds, want the start-up one only", rebuilds())
	}
}
