package proxy

import (
	"bytes"
	"iter"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// hopHeaders are the hop-by-hop headers (RFC 9110 §7.6.1) never forwarded,
// and Expect, which the proxy's own server answers (100 Continue) before it
// reads the body, as nginx does. fasthttp keeps Connection and
// Transfer-Encoding apart from the other headers and frames each message
// itself.
var hopHeaders = [...]string{
	"Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Upgrade", "Expect",
}

// methods are the common methods as constant strings, so that the request
// path does not copy them.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

func methodString(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

// splitURI copies a request target once and returns its path (as the
// client encoded it) and its query. An absolute-form target
// ("http://host/p") yields its path.
func splitURI(uri []byte) (path, query string) {
	if len(uri) > 0 && uri[0] != '/' {
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				uri = rest[j:]
			} else {
				uri = []byte("/")
			}
		}
	}
	s := string(uri)
	path, query, _ = strings.Cut(s, "?")
	return path, query
}

// clientIP returns the client's address without the port.
func clientIP(ctx *fasthttp.RequestCtx) string {
	if c, ok := unwrap[*clientConn](ctx.Conn()); ok {
		return c.ip
	}
	return addrIP(ctx.RemoteAddr())
}

// addrIP returns a's IP address as text.
func addrIP(a net.Addr) string {
	if a, ok := a.(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap().String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// badFraming returns why a request head is refused under RFC 9112, or ""
// when it is fine. fasthttp refuses duplicate Content-Length, a second
// Transfer-Encoding, Transfer-Encoding on HTTP/1.0 and codings it does not
// know. It accepts three things a proxy must not pass on, which one pass
// over the head as received finds: header lines folded onto a
// continuation line (§5.2, obs-fold; fasthttp joins them), Content-Length
// together with Transfer-Encoding (§6.1: a smuggling attempt; fasthttp
// lets chunked win), and Transfer-Encoding "identity" (not a coding since
// RFC 9112; fasthttp ignores it and frames the body by Content-Length, or
// as empty, so the body's bytes would be read as the next request).
func badFraming(h *fasthttp.RequestHeader) string {
	var te, cl bool
	for raw := h.RawHeaders(); len(raw) > 0; {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return "obs-fold"
		}
		switch line[0] | 0x20 {
		case 't':
			te = te || isField(line, fieldTE)
		case 'c':
			cl = cl || isField(line, fieldCL)
		}
	}
	switch {
	case te && cl:
		return "content-length with transfer-encoding"
	case te && h.ContentLength() != -1:
		return "transfer-encoding other than chunked"
	}
	return ""
}

// The framing fields, lowercase, for isField.
var fieldTE, fieldCL = []byte("transfer-encoding"), []byte("content-length")

// isField reports whether the raw header line is field name, ignoring
// case.
func isField(line, name []byte) bool {
	return len(line) > len(name) && line[len(name)] == ':' && bytes.EqualFold(line[:len(name)], name)
}

// removeHopHeaders deletes the hop-by-hop headers from a request or
// response header, including those its Connection header names.
func removeHopHeaders(peek func(string) []byte, del func(string)) {
	if c := peek("Connection"); len(c) > 0 {
		for f := range strings.SplitSeq(string(c), ",") {
			if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "close") && !strings.EqualFold(f, "keep-alive") {
				del(f)
			}
		}
		del("Connection")
	}
	for _, k := range hopHeaders {
		del(k)
	}
}

// ourRequestHeaders are the headers setForwarded sets: a client's values
// are replaced, never passed on.
var ourRequestHeaders = [...]string{"X-Real-Ip", "X-Forwarded-Proto", "X-Forwarded-Host",
	"X-Forwarded-Port", "X-Forwarded-Path", "X-Forwarded-Prefix", "Via"}

// scan reports, in one pass over the headers, whether any of them is
// hop-by-hop (Connection included) or one of ours, which then need
// deleting; most requests and responses have none, and the headers are
// then only appended to.
func scan(all iter.Seq2[[]byte, []byte]) (dirty bool) {
	for k := range all {
		if isHopOrOurs(k) {
			return true
		}
	}
	return false
}

// isHopOrOurs reports whether header name k is hop-by-hop, Connection, or
// one of ourRequestHeaders (X-Forwarded-For is appended to, not replaced).
func isHopOrOurs(k []byte) bool {
	if len(k) < 2 {
		return false
	}
	switch k[0] | 0x20 {
	case 'x':
		return len(k) > 12 && bytes.EqualFold(k[:12], []byte("x-forwarded-")) && !bytes.EqualFold(k, []byte("x-forwarded-for")) ||
			bytes.EqualFold(k, []byte("x-real-ip"))
	case 'c':
		return bytes.EqualFold(k, []byte("connection"))
	case 'v':
		return bytes.EqualFold(k, []byte("via"))
	case 'p', 'k', 't', 'u', 'e':
		for _, h := range hopHeaders {
			if bytes.EqualFold(k, []byte(h)) {
				return true
			}
		}
	}
	return false
}

// setForwarded sets Kong's upstream headers on the request. Client-sent
// X-Forwarded-* values are never trusted (Kong's default, empty
// trusted_ips), except that X-Forwarded-For is appended to. Hop-by-hop
// headers go, except for an upgrade, which needs Connection and Upgrade.
func (p *Proxy) setForwarded(x *exchange, upgrade bool) {
	h := &x.ctx.Request.Header
	if scan(h.All()) {
		if !upgrade {
			removeHopHeaders(h.Peek, h.Del)
		}
		for _, k := range ourRequestHeaders {
			h.Del(k)
		}
	}
	ip := x.pc.ClientIP
	prior := h.Peek("X-Forwarded-For")
	// The names below are canonical already: skip fasthttp's
	// normalizing them (the values are the client's parsed ones, or ours).
	if normalizing := !h.DisableNormalizing(); normalizing {
		defer h.EnableNormalizing()
	}
	if len(prior) > 0 {
		h.Set("X-Forwarded-For", string(prior)+", "+ip)
	} else {
		h.Add("X-Forwarded-For", ip)
	}
	h.Add("X-Real-Ip", ip)
	scheme, port := "http", "80"
	if x.ctx.IsTLS() {
		scheme, port = "https", "443"
	}
	if a, ok := x.ctx.LocalAddr().(*net.TCPAddr); ok {
		port = p.portText(a.Port)
	}
	h.Add("X-Forwarded-Proto", scheme)
	h.Add("X-Forwarded-Host", hostOnly(x.host))
	h.Add("X-Forwarded-Port", port)
	h.Add("X-Forwarded-Path", x.path)
	if m := x.match; m.Route.StripPath && m.Prefix != "" && m.Prefix != "/" {
		h.Add("X-Forwarded-Prefix", m.Prefix)
	}
	h.Add("Via", p.via)
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
	client atomic.Pointer[fasthttp.HostClient] // set on first use
	tls    bool
	dial   string             // host:port to connect to
	host   string             // Host header (serviceHost)
	cert   *ClientCertificate // presented to an https upstream; nil for none
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
	a := &svcAddr{tls: s.Protocol == "https", host: serviceHost(s)}
	if a.tls {
		a.cert = p.clientCertificate(s)
	}
	port := s.Port
	if port == 0 {
		port = 80
		if a.tls {
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
