package proxy

import (
	"bytes"
	"net/http"
	"slices"
)

// Kong's answers to a request whose route does not serve its protocol.
const (
	msgUseHTTPS = "Please use HTTPS protocol"
	msgNotGRPC  = "Non-gRPC request matched gRPC route"
)

// refuseProtocol answers, as Kong's runloop does before the access phase, a
// request on this listener (plain HTTP/1.1) whose route does not serve
// plain HTTP: a route for https only gets its https_redirect_status_code
// (426 with an Upgrade header, or a redirect to https), a route for grpc or
// grpcs only refuses a request that is not gRPC with 415. It reports
// whether it answered. Routes with Kong's default protocols (http, https)
// cost one comparison.
func (p *Proxy) refuseProtocol(x *exchange) bool {
	r := x.match.Route
	if len(r.Protocols) == 0 || slices.Contains(r.Protocols, "http") {
		return false
	}
	grpc := slices.Contains(r.Protocols, "grpc") || slices.Contains(r.Protocols, "grpcs")
	switch {
	case grpc && !slices.Contains(r.Protocols, "https"):
		if bytes.HasPrefix(x.ctx.Request.Header.ContentType(), []byte("application/grpc")) {
			return false
		}
		p.answer(x, http.StatusUnsupportedMediaType, msgNotGRPC)
	case x.ctx.IsTLS():
		return false
	case r.HTTPSRedirectStatusCode == http.StatusUpgradeRequired || r.HTTPSRedirectStatusCode == 0:
		x.pc.ExitMessage(http.StatusUpgradeRequired, msgUseHTTPS, "Connection", "Upgrade", "Upgrade", "TLS/1.2, HTTP/1.1")
		p.exit(x)
	default: // 301, 302, 307 or 308 (entity.Validate allows no other)
		x.pc.Exit(r.HTTPSRedirectStatusCode, nil, "Location", "https://"+hostOnly(x.host)+string(x.ctx.RequestURI()))
		p.exit(x)
	}
	return true
}
