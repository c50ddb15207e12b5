package proxy

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
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
// edited in place; path is the request's requestPath. Client-sent X-Forwarded-* values are never trusted
// (Kong's default, empty trusted_ips), except that X-Forwarded-For is
// appended to.
func (p *Proxy) setForwarded(c *plugins.Context, h http.Header, r *http.Request, path string, m router.Match) {
	clientIP := c.ClientIP
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		h["X-Forwarded-For"] = c.Values(strings.Join(prior, ", ") + ", " + clientIP)
	} else {
		h["X-Forwarded-For"] = c.Values(clientIP)
	}
	h["X-Real-Ip"] = c.Values(clientIP)
	scheme, port := "http", "80"
	if r.TLS != nil {
		scheme, port = "https", "443"
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		port = p.portText(a.Port)
	}
	h["X-Forwarded-Proto"] = c.Values(scheme)
	h["X-Forwarded-Host"] = c.Values(hostOnly(r.Host))
	h["X-Forwarded-Port"] = c.Values(port)
	h["X-Forwarded-Path"] = c.Values(path)
	if m.Route.StripPath && m.Prefix != "" && m.Prefix != "/" {
		h["X-Forwarded-Prefix"] = c.Values(m.Prefix)
	} else {
		delete(h, "X-Forwarded-Prefix")
	}
	h["Via"] = c.Values(p.via)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = c.Values("") // keep Go's default User-Agent out
	}
}

// portText formats a local port, remembering the last one: a node listens
// on one or two proxy ports, so this saves a string per request.
func (p *Proxy) portText(port int) string {
	if last := p.lastPort.Load(); last != nil && last.n == port {
		return last.s
	}
	s := strconv.Itoa(port)
	p.lastPort.Store(&formattedPort{n: port, s: s})
	return s
}

type formattedPort struct {
	n int
	s string
}

// serviceHost is the Host header sent to service s (without
// preserve_host): its host, with its port unless that is the scheme's
// default.
func serviceHost(s *entity.Service) string {
	if s.Port == 0 || (s.Port == 80 && s.Protocol != "https") || (s.Port == 443 && s.Protocol == "https") {
		return s.Host
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// svcAddr holds what forward derives from a service's address.
type svcAddr struct {
	scheme string // http or https
	dial   string // host:port to connect to
	host   string // Host header (serviceHost)
}

// addrCache maps a service entity to its svcAddr. Entities are immutable
// and a route table rebuild brings new ones, so SetRouter starts a new
// cache; maxAddrs bounds it in between.
type addrCache struct {
	m sync.Map // *entity.Service -> *svcAddr
	n atomic.Int64
}

const maxAddrs = 1 << 14

// addrOf returns s's svcAddr, computed once per service entity.
func (p *Proxy) addrOf(s *entity.Service) *svcAddr {
	c := p.addrs.Load()
	if v, ok := c.m.Load(s); ok {
		return v.(*svcAddr)
	}
	a := &svcAddr{scheme: "http", host: serviceHost(s)}
	port := s.Port
	if s.Protocol == "https" {
		a.scheme = "https"
	}
	if port == 0 {
		port = 80
		if a.scheme == "https" {
			port = 443
		}
	}
	a.dial = net.JoinHostPort(s.Host, strconv.Itoa(port))
	if c.n.Add(1) <= maxAddrs {
		c.m.Store(s, a)
	}
	return a
}

// hostOnly strips a port from a Host header value.
func hostOnly(host string) string {
	if !strings.Contains(host, ":") {
		return host // the common case; SplitHostPort would allocate its error
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// copyResponseHeader copies the upstream response headers into dst,
// leaving hop-by-hop headers out and adding our Via.
func (p *Proxy) copyResponseHeader(c *plugins.Context, dst, src http.Header) {
	removeHopHeaders(src)
	for k, vv := range src {
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vv...)
		} else {
			// src is this response's own map, dropped after the copy:
			// share its value slices instead of copying them.
			dst[k] = vv[:len(vv):len(vv)]
		}
	}
	if via := dst["Via"]; len(via) > 0 {
		dst["Via"] = c.Values(strings.Join(via, ", ") + ", " + p.via)
	} else {
		dst["Via"] = c.Values(p.via)
	}
}
