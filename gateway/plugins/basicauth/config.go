package basicauth

import (
	"encoding/json"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is basic-auth's configuration with Kong's field names.
type Config struct {
	// Anonymous is the id of the consumer used when authentication fails;
	// nil (the default) answers 401 instead.
	Anonymous *string `json:"anonymous"`
	// HideCredentials removes the Authorization (or Proxy-Authorization)
	// header the credentials were read from before proxying. Default false.
	HideCredentials bool `json:"hide_credentials" kong:"required"`
	// Realm is named in the 401's challenge, Basic realm="<realm>".
	// Default "service".
	Realm string `json:"realm" kong:"required,len_min=1"`
}

// defaultConfig returns Kong's defaults.
func defaultConfig() Config { return Config{Realm: "service"} }

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any {
	c := defaultConfig()
	return &c
}

// parseConfig applies Kong's defaults to raw and validates it.
func parseConfig(raw json.RawMessage) (Config, error) {
	c := defaultConfig()
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	if c.Anonymous != nil && *c.Anonymous == "" {
		c.Anonymous = nil
	}
	return c, nil
}
