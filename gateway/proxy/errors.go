package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// statusClientClosed is nginx's 499: the client went away first.
const statusClientClosed = 499

// Kong's bodies for upstream failures (kong/error_handlers.lua).
const (
	msgBadGateway  = "An invalid response was received from the upstream server"
	msgUnavailable = "The upstream server is currently unavailable"
	msgTimeout     = "The upstream server is timing out"
	msgDNS         = "name resolution failed"
)

// errorHandler is the one place where upstream errors become responses.
func (p *Proxy) errorHandler(st *state, err error) {
	status, msg := upstreamError(st.pc.R.Context(), err)
	if status == statusClientClosed {
		st.pc.Status = status // nobody to answer
		return
	}
	st.pc.RespondMessage(status, msg)
}

// upstreamError maps a transport error to Kong's status and message, as
// nginx would: a refused or reset connection or a malformed response is
// 502, a timeout (connect or read) 504, a name that does not resolve 503.
func upstreamError(ctx context.Context, err error) (int, string) {
	if ctx.Err() != nil {
		return statusClientClosed, ""
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && !dns.IsTimeout {
		return http.StatusServiceUnavailable, msgDNS
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout, msgTimeout
	}
	if errors.Is(err, errNoUpstream) {
		return http.StatusServiceUnavailable, msgUnavailable
	}
	return http.StatusBadGateway, msgBadGateway
}

// errNoUpstream marks a service that has no address to connect to.
var errNoUpstream = errors.New("proxy: service has no host")
