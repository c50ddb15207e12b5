package node

import (
	"crypto/x509"
	"fmt"
	"os"
)

// trustedCAs builds the pool that HTTPS upstream certificates are verified
// against from lua_ssl_trusted_certificate: "system" is the host's trust
// store, anything else a PEM file. Nil means the host's store alone.
func trustedCAs(entries []string) (*x509.CertPool, error) {
	if len(entries) == 0 || len(entries) == 1 && entries[0] == "system" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	for _, e := range entries {
		if e == "system" {
			sys, err := x509.SystemCertPool()
			if err != nil {
				return nil, fmt.Errorf("lua_ssl_trusted_certificate: cannot load the system trust store: %w", err)
			}
			pool = sys.Clone()
			break
		}
	}
	for _, e := range entries {
		if e == "system" {
			continue
		}
		pem, err := os.ReadFile(e)
		if err != nil {
			return nil, fmt.Errorf("lua_ssl_trusted_certificate: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("lua_ssl_trusted_certificate: %s holds no PEM certificate (want \"system\" and/or PEM files, comma-separated)", e)
		}
	}
	return pool, nil
}
