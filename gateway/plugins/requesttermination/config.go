package requesttermination

import (
	"encoding/json"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is request-termination's configuration with Kong's field names.
type Config struct {
	// StatusCode is the response status, 100 to 599. Default 503.
	StatusCode int `json:"status_code" kong:"between=100|599"`
	// Message is sent as {"message": Message}. Nil sends Kong's default
	// message for the status. It cannot be combined with Body.
	Message *string `json:"message"`
	// Body is sent verbatim with ContentType (default
	// "application/json; charset=utf-8").
	Body        *string `json:"body"`
	ContentType *string `json:"content_type"`
}

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any { return &Config{StatusCode: 503} }

func parseConfig(raw json.RawMessage) (Config, error) {
	c := Config{StatusCode: 503}
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	switch {
	case c.Message != nil && (c.Body != nil || c.ContentType != nil):
		return Config{}, plugins.FieldErrors{"@entity": "message cannot be used with content_type or body"}
	case c.ContentType != nil && c.Body == nil:
		return Config{}, plugins.FieldErrors{"@entity": "content_type requires a body"}
	}
	return c, nil
}
