package admin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"time"
)

// Kong behaviours of certificates and of services' client_certificate.
func init() {
	rsaCert, rsaKey := selfSigned("a.example.com", false)
	otherCert, otherKey := selfSigned("b.example.com", false)
	ecCert, ecKey := selfSigned("c.example.com", true)
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	pair := func(cert, key string) string { return `"cert":` + q(cert) + `,"key":` + q(key) }
	compatScenarios = append(compatScenarios,
		compatScenario{"certificates", []compatStep{
			{name: "unparsable", method: "POST", path: "/certificates", body: `{"cert":"bar","key":"foo"}`, status: 400,
				want: `{"code":2,"name":"schema violation","fields":{"cert":"<any>","key":"<any>"}}`},
			{name: "sni with a port", method: "POST", path: "/certificates", body: `{` + pair(rsaCert, rsaKey) + `,"snis":["a.example.com:443"]}`,
				status: 400, want: `{"fields":{"snis":"invalid value: a.example.com:443"}}`},
			{name: "key of another certificate", method: "POST", path: "/certificates", body: `{` + pair(rsaCert, otherKey) + `}`,
				status: 400, want: `{"code":2,"fields":{"@entity":["certificate does not match key"]}}`},
			{name: "cert_alt without key_alt", method: "POST", path: "/certificates",
				body: `{` + pair(rsaCert, rsaKey) + `,"cert_alt":` + q(ecCert) + `}`, status: 400,
				want: `{"fields":{"@entity":["all or none of these fields must be set: 'cert_alt', 'key_alt'"]}}`},
			{name: "alternative of the same type", method: "POST", path: "/certificates",
				body: `{` + pair(rsaCert, rsaKey) + `,"cert_alt":` + q(otherCert) + `,"key_alt":` + q(otherKey) + `}`, status: 400,
				want: `{"fields":{"@entity":["certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type"]}}`},
			{name: "create with snis and tags", method: "POST", path: "/certificates",
				body:   `{` + pair(rsaCert, rsaKey) + `,"snis":["z.example.com","*.example.com"],"tags":["t1"]}`,
				status: 201, save: "c1",
				want: `{"cert":` + q(rsaCert) + `,"key":` + q(rsaKey) + `,"cert_alt":null,"key_alt":null,
					"snis":["*.example.com","z.example.com"],"tags":["t1"]}`},
			{name: "with an ECDSA alternative", method: "POST", path: "/certificates",
				body:   `{` + pair(rsaCert, rsaKey) + `,"cert_alt":` + q(ecCert) + `,"key_alt":` + q(ecKey) + `}`,
				status: 201, save: "c2", want: `{"cert_alt":` + q(ecCert) + `}`},
			{name: "list", method: "GET", path: "/certificates?tags=t1", status: 200, want: `{"data":[{"id":"${c1}"}]}`},
			{name: "https service presents it", method: "POST", path: "/services",
				body: `{"name":"s","url":"https://up.example.com","client_certificate":{"id":"${c1}"}}`, status: 201,
				want: `{"client_certificate":{"id":"${c1}"}}`},
			{name: "http service cannot", method: "POST", path: "/services",
				body: `{"url":"http://up.example.com","client_certificate":{"id":"${c1}"}}`, status: 400,
				want: `{"fields":{"client_certificate":"value must be null"}}`},
			{name: "unknown certificate", method: "POST", path: "/services",
				body:   `{"url":"https://up.example.com","client_certificate":{"id":"6b4f0b2c-9d47-4a7e-8a67-2f2bd1b0b001"}}`,
				status: 400, want: `{"code":4,"name":"foreign key violation"}`},
			{name: "delete while a service uses it", method: "DELETE", path: "/certificates/${c1}", status: 400,
				want: `{"code":4,"name":"foreign key violation","message":"an existing 'services' entity references this 'certificates' entity"}`},
			{name: "replace the pair", method: "PATCH", path: "/certificates/${c1}", body: `{` + pair(otherCert, otherKey) + `}`,
				status: 200, want: `{"cert":` + q(otherCert) + `,"snis":["*.example.com","z.example.com"]}`},
			{method: "DELETE", path: "/services/s", status: 204},
			{method: "DELETE", path: "/certificates/${c1}", status: 204},
			{method: "GET", path: "/certificates/${c1}", status: 404},
			{method: "GET", path: "/schemas/certificates", status: 200, want: `{"fields":[{"id":{}},{"created_at":{}},
				{"updated_at":{}},{"cert":{"type":"string","required":true}},{"key":{"type":"string","required":true}},
				{"cert_alt":{"type":"string"}},{"key_alt":{"type":"string"}},{"tags":{}},{"snis":{"type":"set"}}],
				"entity_checks":[{"mutually_required":["cert_alt","key_alt"]}]}`},
		}},
	)
}

// selfSigned returns a new self-signed certificate for name and its key,
// in PEM: RSA 2048, or ECDSA P-256 when ec is set.
func selfSigned(name string, ec bool) (certPEM, keyPEM string) {
	var (
		key crypto.Signer
		err error
	)
	if ec {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
}
