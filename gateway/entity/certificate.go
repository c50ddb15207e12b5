package entity

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
)

// KeyPair returns the certificate and key as a tls.Certificate, the form a
// TLS client presents. It fails as Validate reports.
func (c *Certificate) KeyPair() (tls.Certificate, error) {
	kp, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("entity: certificate %s: %w", c.ID, err)
	}
	return kp, nil
}

// validateCertificate checks c as Kong does: each certificate and key
// parses, each key matches its certificate, cert_alt and key_alt come
// together, and the alternative pair has another key type.
func validateCertificate(c *Certificate, errs FieldErrors) {
	checkTags(c.Tags, errs)
	for _, sni := range c.SNIs {
		if !validSNI(sni) {
			errs["snis"] = "invalid value: " + sni
		}
	}
	if (c.CertAlt == nil) != (c.KeyAlt == nil) {
		errs["@entity"] = "all or none of these fields must be set: 'cert_alt', 'key_alt'"
	}
	main := checkPair(c.Cert, c.Key, "cert", "key", "certificate does not match key", errs)
	if c.CertAlt == nil || c.KeyAlt == nil {
		return
	}
	alt := checkPair(*c.CertAlt, *c.KeyAlt, "cert_alt", "key_alt", "alternative certificate does not match key", errs)
	if main != nil && alt != nil && reflect.TypeOf(main.PublicKey) == reflect.TypeOf(alt.PublicKey) {
		errs["@entity"] = "certificate and alternative certificate need to have different type " +
			"(e.g. RSA and ECDSA), the provided certificates were both of the same type"
	}
}

// validSNI reports whether name is a server name a certificate may be
// for: a hostname, not an IP address and without a port, whose leftmost or
// rightmost label may be a wildcard.
func validSNI(name string) bool {
	if net.ParseIP(name) != nil || strings.Contains(name, ":") || strings.Count(name, "*") > 1 {
		return false
	}
	if strings.HasPrefix(name, "*.") || strings.HasSuffix(name, ".*") {
		name = strings.Replace(name, "*", "wildcard", 1)
	}
	return validHost(name)
}

// checkPair parses one certificate and its key, reporting errors under
// the fields named, and returns the certificate when both parse and match.
func checkPair(certPEM, keyPEM, certField, keyField, mismatch string, errs FieldErrors) *x509.Certificate {
	if certPEM == "" || keyPEM == "" {
		return nil // required fields, reported by checkFields
	}
	cert, certErr := parseCertificate(certPEM)
	if certErr != nil {
		errs[certField] = "invalid certificate: " + certErr.Error()
	}
	keyErr := parseKey(keyPEM)
	if keyErr != nil {
		errs[keyField] = "invalid key: " + keyErr.Error()
	}
	if certErr != nil || keyErr != nil {
		return nil
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		errs["@entity"] = mismatch
		return nil
	}
	return cert
}

// parseCertificate parses the first PEM block of s as an X.509 certificate.
func parseCertificate(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// parseKey parses the first PEM block of s as a private key: PKCS #8,
// PKCS #1 (RSA) or SEC 1 (EC).
func parseKey(s string) error {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return errors.New("no PEM private key block")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return nil
	}
	return errors.New("unsupported or malformed private key (PKCS #8, PKCS #1 or SEC 1 expected)")
}
