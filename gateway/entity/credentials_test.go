package entity

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"testing"
)

// Test keys in the three PEM forms a jwt_secrets rsa_public_key may take.
const (
	rsaPublicPEM = `
-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC4Tntq0JFgdkeapB1hXtK3uUVD
lQsXT8uO7dBKJ+YWPlJpmmI/NH+lUrXzgVmikRgNZuZXfcsn8g4Gvh4fjUoZWBGs
7veZGv2/OxTlqQ+6ZVrYXdVuQ2BjTn/OKkaof+WJ18oC5Kf88+ssJl9mthyDbEZF
a1IzaYj8Q1wimGFnNwIDAQAB
-----END PUBLIC KEY-----
`
	rsaPKCS1PEM = `
-----BEGIN RSA PUBLIC KEY-----
MIGJAoGBALhOe2rQkWB2R5qkHWFe0re5RUOVCxdPy47t0Eon5hY+UmmaYj80f6VS
tfOBWaKRGA1m5ld9yyfyDga+Hh+NShlYEazu95ka/b87FOWpD7plWthd1W5DYGNO
f84qRqh/5YnXygLkp/zz6ywmX2a2HINsRkVrUjNpiPxDXCKYYWc3AgMBAAE=
-----END RSA PUBLIC KEY-----
`
	ecCertPEM = `
-----BEGIN CERTIFICATE-----
MIIBbDCCAROgAwIBAgIUaOkD/1pxqG8ENQQ8l9Imt0DRJkwwCgYIKoZIzj0EAwIw
DDEKMAgGA1UEAwwBeDAeFw0yNjEyMDYxNjA2NDZaFw0yNjEyMDcxNjA2NDZaMAwx
CjAIBgNVBAMMAXgwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATPcac8/spHi1Hp
kGRj+QK4ZrVVnE3qaCru+6sxNpBbL8htdaoZdd5YNafl32DMa87JCBEH3/q2kEeI
G7uwx+nto1MwUTAdBgNVHQ4EFgQUwEc+/81Q51vQrNj4MCN5RECB084wHwYDVR0j
BBgwFoAUwEc+/81Q51vQrNj4MCN5RECB084wDwYDVR0TAQH/BAUwAwEB/zAKBggq
hkjOPQQDAgNHADBEAiA0spPDuHBqIAL0Z9yAqSl6oblsmuoBKoQhFOWtC5eLcgIg
SMwd9hzkwZPkZIXv7ZUcD505O9eJl+rAKqFtLbcE008=
-----END CERTIFICATE-----
`
)

func TestHashPassword(t *testing.T) {
	// Kong's crypto.lua: sha1(password .. consumer_id), hex.
	const consumer = "11111111-1111-4111-8111-111111111111"
	if got := HashPassword(consumer, "secret"); got != "daaa0c42d6ef59eea2e255212f12ec4db9f6c0c6" {
		t.Fatalf("HashPassword = %s", got)
	}
	c := &BasicAuthCredential{Username: "u", Password: HashPassword(consumer, "secret"), Consumer: &Ref{ID: consumer}}
	if !c.Matches("secret") || c.Matches("Secret") || c.Matches("") {
		t.Fatal("Matches accepts the wrong password or refuses the right one")
	}
	other := *c
	other.Consumer = &Ref{ID: "22222222-2222-4222-8222-222222222222"}
	if other.Matches("secret") {
		t.Fatal("the hash is salted with the consumer id: another consumer's credential must not match")
	}
}

func TestParsePublicKey(t *testing.T) {
	if k, err := ParsePublicKey(rsaPublicPEM); err != nil {
		t.Fatal(err)
	} else if _, ok := k.(*rsa.PublicKey); !ok {
		t.Fatalf("PUBLIC KEY gave %T", k)
	}
	if k, err := ParsePublicKey(rsaPKCS1PEM); err != nil {
		t.Fatal(err)
	} else if _, ok := k.(*rsa.PublicKey); !ok {
		t.Fatalf("RSA PUBLIC KEY gave %T", k)
	}
	if k, err := ParsePublicKey(ecCertPEM); err != nil {
		t.Fatal(err)
	} else if _, ok := k.(*ecdsa.PublicKey); !ok {
		t.Fatalf("CERTIFICATE gave %T", k)
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted it", bad)
		}
	}
}

func TestCredentialLookupKeys(t *testing.T) {
	for _, tt := range []struct {
		e    Entity
		want CacheKey
	}{
		{&KeyAuthCredential{ID: "1", Key: "k"}, CacheKey{KindKeyAuth, "k"}},
		{&BasicAuthCredential{ID: "2", Username: "u"}, CacheKey{KindBasicAuth, "u"}},
		{&JWTSecret{ID: "3", Key: "iss"}, CacheKey{KindJWT, "iss"}},
		{&Consumer{ID: "4"}, CacheKey{KindConsumer, "4"}},
	} {
		if got := LookupKey(tt.e); got != tt.want {
			t.Errorf("LookupKey(%T) = %v, want %v", tt.e, got, tt.want)
		}
		// The proxy looks credentials up by the schema's CacheKey field:
		// it must be the field LookupKey reads, and unique.
		s := Schemas[tt.e.EntityKind()]
		unique, _ := tt.e.Index()
		if s.CacheKey != "" && unique[s.CacheKey] != tt.want.ID {
			t.Errorf("%s: CacheKey field %q is %q in Index, LookupKey says %q", s.Kind, s.CacheKey, unique[s.CacheKey], tt.want.ID)
		}
	}
}
