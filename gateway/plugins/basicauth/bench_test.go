package basicauth

import (
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

// BenchmarkAccess measures one authenticated request on the in-memory
// engine: header parsing, the salted SHA-1 and Kong's headers.
func BenchmarkAccess(b *testing.B) {
	set, err := plugintest.NewSet(New(newCreds()), `{}`)
	if err != nil {
		b.Fatal(err)
	}
	header := map[string]string{"Authorization": basic("alice:s3cret:with colon")}
	b.ReportAllocs()
	for b.Loop() {
		req := plugintest.New(http.MethodGet, "/", header, nil)
		plugintest.Run(set, req.Context())
		if !req.Forwarded() {
			b.Fatal("refused")
		}
	}
}
