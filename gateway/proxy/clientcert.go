package proxy

import (
	"crypto/sha256"
	"crypto/tls"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// ClientCertificate is a key pair that services present to their HTTPS
// upstreams (the service's client_certificate).
type ClientCertificate struct {
	// Digest identifies the pair. Upstream connection pools are keyed by
	// it, so a changed certificate gets new connections while an unchanged
	// one keeps its pool across route table rebuilds.
	Digest [sha256.Size]byte
	Pair   tls.Certificate
}

// ClientCertificates maps a certificate entity's id to its key pair.
type ClientCertificates map[string]*ClientCertificate

// NewClientCertificate parses c's certificate and key.
func NewClientCertificate(c *entity.Certificate) (*ClientCertificate, error) {
	pair, err := c.KeyPair()
	if err != nil {
		return nil, err
	}
	return &ClientCertificate{Digest: sha256.Sum256([]byte(c.Cert + "\x00" + c.Key)), Pair: pair}, nil
}

// SetClientCertificates makes certs the key pairs services present from
// now on. Call it before the SetRouter whose services reference them:
// SetRouter starts afresh the per-service state that holds a pair.
func (p *Proxy) SetClientCertificates(certs ClientCertificates) { p.certs.Store(&certs) }

// clientCertificate returns the key pair service s presents, or nil.
func (p *Proxy) clientCertificate(s *entity.Service) *ClientCertificate {
	if s.ClientCertificate == nil {
		return nil
	}
	certs := p.certs.Load()
	if certs == nil {
		return nil
	}
	return (*certs)[s.ClientCertificate.ID]
}
