package entity

import (
	"crypto"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// HashPassword returns Kong's basic-auth hash of password for the consumer
// consumerID: the hex SHA-1 of password followed by the consumer's id
// (kong/plugins/basic-auth/crypto.lua). The Admin API stores this, never
// the password.
func HashPassword(consumerID, password string) string {
	sum := sha1.Sum([]byte(password + consumerID))
	return hex.EncodeToString(sum[:])
}

// Matches reports whether password is the credential's password, in
// constant time.
func (b *BasicAuthCredential) Matches(password string) bool {
	want := HashPassword(refID(b.Consumer), password)
	return subtle.ConstantTimeCompare([]byte(want), []byte(b.Password)) == 1
}

// ParsePublicKey returns the public key of a PEM document as a jwt_secrets
// rsa_public_key holds it: a PUBLIC KEY (PKIX: RSA, ECDSA or Ed25519), an
// RSA PUBLIC KEY (PKCS #1) or a CERTIFICATE.
func ParsePublicKey(doc string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(doc))
	if block == nil {
		return nil, errors.New("entity: no PEM block in the public key")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("entity: a public key cannot be a PEM %q block", block.Type)
}
