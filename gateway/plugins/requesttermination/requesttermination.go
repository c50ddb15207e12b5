// Package requesttermination implements Kong's request-termination plugin:
// it answers every request itself with a fixed status and body.
package requesttermination

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "request-termination"
	Priority = 2
)

// Plugin is the request-termination plugin. It is stateless and safe for
// concurrent use.
type Plugin struct{}

// New returns the request-termination plugin.
func New() *Plugin { return &Plugin{} }

// Name implements plugins.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements plugins.Plugin.
func (*Plugin) Priority() int { return Priority }

// Configure implements plugins.Plugin.
func (*Plugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	h := &handler{Config: cfg, contentType: "application/json; charset=utf-8"}
	switch {
	case cfg.Body != nil:
		h.body = []byte(*cfg.Body)
		if cfg.ContentType != nil {
			h.contentType = *cfg.ContentType
		}
	case cfg.Message != nil:
		h.body = plugins.MessageBody(*cfg.Message)
	default:
		h.body = plugins.MessageBody(defaultMessage(cfg.StatusCode))
	}
	return h, nil
}

// handler answers with a body prepared once. Its JSON form is its Config.
type handler struct {
	Config
	body        []byte
	contentType string
}

// Access implements plugins.Accessor. The engine drops the body of a
// HEAD response; the plugin answers every method alike.
func (h *handler) Access(c *plugins.Context) {
	c.Exit(h.StatusCode, h.body, "Content-Type", h.contentType)
}

// defaultMessage is Kong's message for a status when none is configured.
func defaultMessage(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return "Service unavailable"
	case http.StatusNotFound:
		return "Not found"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusInternalServerError:
		return "An unexpected error occurred"
	case http.StatusTooManyRequests:
		return "API rate limit exceeded"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(status)
}

var (
	_ plugins.Plugin   = (*Plugin)(nil)
	_ plugins.Accessor = (*handler)(nil)
)
