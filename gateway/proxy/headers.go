package proxy

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/gateway/router"
)

// hopHeaders are the hop-by-hop headers (RFC 9110 §7.6.1) never forwarded.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes the hop-by-hop headers from h, including those
// named in its Connection header.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// setForwarded sets Kong's upstream headers on h, the client's headers
// edited in place. Client-sent X-Forwarded-* values are never trusted
// (Kong's default, empty trusted_ips), except that X-Forwarded-For is
// appended to.
func (p *Proxy) setForwarded(h http.Header, r *http.Request, clientIP string, m router.Match) {
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + clientIP}
	} else {
		h["X-Forwarded-For"] = []string{clientIP}
	}
	h["X-Real-Ip"] = []string{clientIP}
	scheme, port := "http", "80"
	if r.TLS != nil {
		scheme, port = "https", "443"
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	h["X-Forwarded-Proto"] = []string{scheme}
	h["X-Forwarded-Host"] = []string{hostOnly(r.Host)}
	h["X-Forwarded-Port"] = []string{port}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	h["X-Forwarded-Path"] = []string{path}
	if m.Route.StripPath && m.Prefix != "" && m.Prefix != "/" {
		h["X-Forwarded-Prefix"] = []string{m.Prefix}
	} else {
		delete(h, "X-Forwarded-Prefix")
	}
	h["Via"] = []string{p.via}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // keep Go's default User-Agent out
	}
}

// upstreamHost returns the Host header to send: the client's with
// preserve_host, else the service's host with its port unless default.
func upstreamHost(r *http.Request, m router.Match) string {
	if m.Route.PreserveHost {
		return r.Host
	}
	s := m.Service
	if s.Port == 0 || (s.Port == 80 && s.Protocol != "https") || (s.Port == 443 && s.Protocol == "https") {
		return s.Host
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// hostOnly strips a port from a Host header value.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// copyResponseHeader copies the upstream response headers into dst,
// leaving hop-by-hop headers out and adding our Via.
func (p *Proxy) copyResponseHeader(dst, src http.Header) {
	removeHopHeaders(src)
	for k, vv := range src {
		dst[k] = append(dst[k], vv...)
	}
	if via := dst["Via"]; len(via) > 0 {
		dst["Via"] = []string{strings.Join(via, ", ") + ", " + p.via}
	} else {
		dst["Via"] = []string{p.via}
	}
}
