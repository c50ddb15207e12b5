package keyauth

import (
	"encoding/json"
	"regexp"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is key-auth's configuration with Kong's field names.
type Config struct {
	// KeyNames are the header, query and body parameter names searched, in
	// order. Default ["apikey"].
	KeyNames []string `json:"key_names" kong:"required,len_min=1"`
	// KeyInHeader, KeyInQuery and KeyInBody say where keys are searched.
	// Defaults true, true, false.
	KeyInHeader bool `json:"key_in_header" kong:"required"`
	KeyInQuery  bool `json:"key_in_query" kong:"required"`
	KeyInBody   bool `json:"key_in_body" kong:"required"`
	// HideCredentials removes the key from the request sent upstream.
	HideCredentials bool `json:"hide_credentials" kong:"required"`
	// Anonymous is the id of the consumer used when authentication fails;
	// nil (the default) answers 401 instead.
	Anonymous *string `json:"anonymous"`
	// RunOnPreflight authenticates OPTIONS requests too. Default true.
	RunOnPreflight bool `json:"run_on_preflight" kong:"required"`
	// Realm is named in the WWW-Authenticate challenge of a 401:
	// Key realm="<realm>". Nil (the default) says realm="kong".
	Realm *string `json:"realm"`
}

// defaultConfig returns Kong's defaults.
func defaultConfig() Config {
	return Config{KeyNames: []string{"apikey"}, KeyInHeader: true, KeyInQuery: true, RunOnPreflight: true}
}

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any {
	c := defaultConfig()
	return &c
}

// headerName is Kong's "header_name" type: an RFC 7230 token.
var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// parseConfig applies Kong's defaults to raw and validates it.
func parseConfig(raw json.RawMessage) (Config, error) {
	c := defaultConfig()
	if err := plugins.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	if c.Anonymous != nil && *c.Anonymous == "" {
		c.Anonymous = nil
	}
	for _, n := range c.KeyNames {
		if !headerName.MatchString(n) {
			return Config{}, plugins.FieldErrors{"key_names": "bad header name '" + n + "', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}
		}
	}
	return c, nil
}
