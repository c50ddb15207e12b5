package jwt

import (
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

// BenchmarkAccess measures one authenticated request per algorithm family,
// parsing and verification included, on the in-memory engine.
func BenchmarkAccess(b *testing.B) {
	k := testKeys()
	for _, bc := range []struct {
		name, alg string
		key       any
	}{
		{"HS256", "HS256", []byte("s3cr3t")},
		{"RS256", "RS256", k.rsa},
		{"ES256", "ES256", k.ec256},
		{"EdDSA", "EdDSA", k.ed},
	} {
		b.Run(bc.name, func(b *testing.B) {
			iss := map[string]string{"HS256": "hs256", "RS256": "rs256", "ES256": "es256", "EdDSA": "eddsa"}[bc.alg]
			tok := sign(b, bc.alg, bc.key, `{"alg":"`+bc.alg+`"}`, `{"iss":"`+iss+`"}`)
			set, err := plugintest.NewSet(New(newCreds()), `{}`)
			if err != nil {
				b.Fatal(err)
			}
			header := map[string]string{"Authorization": "Bearer " + tok}
			b.ReportAllocs()
			for b.Loop() {
				req := plugintest.New(http.MethodGet, "/", header, nil)
				plugintest.Run(set, req.Context())
				if !req.Forwarded() {
					b.Fatal("refused")
				}
			}
		})
	}
}
