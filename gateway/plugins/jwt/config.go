package jwt

import (
	"encoding/json"
	"slices"

	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Config is jwt's configuration with Kong's field names.
type Config struct {
	// URIParamNames are the query arguments searched for a token. Default
	// ["jwt"].
	URIParamNames []string `json:"uri_param_names" kong:"set"`
	// CookieNames are the cookies searched for a token. Default [].
	CookieNames []string `json:"cookie_names" kong:"set"`
	// KeyClaimName is the claim (or, failing that, header member) naming
	// the jwt_secrets key that verifies the token. Default "iss".
	KeyClaimName string `json:"key_claim_name"`
	// SecretIsBase64 says HS* secrets are stored base64url-encoded.
	SecretIsBase64 bool `json:"secret_is_base64" kong:"required"`
	// ClaimsToVerify lists the registered claims checked against the
	// clock: "exp", "nbf". Default none.
	ClaimsToVerify []string `json:"claims_to_verify" kong:"set,one_of=exp|nbf"`
	// Anonymous is the id of the consumer used when authentication fails;
	// nil (the default) answers 401 instead.
	Anonymous *string `json:"anonymous"`
	// RunOnPreflight authenticates OPTIONS requests too. Default true.
	RunOnPreflight bool `json:"run_on_preflight" kong:"required"`
	// MaximumExpiration refuses tokens whose exp is more than this many
	// seconds away (0, the default, does not check). Needs "exp" in
	// ClaimsToVerify.
	MaximumExpiration float64 `json:"maximum_expiration" kong:"between=0|31536000"`
	// HeaderNames are the headers searched for "Bearer <token>". Default
	// ["authorization"].
	HeaderNames []string `json:"header_names" kong:"set"`
	// Realm is named in the 401's challenge, Bearer realm="<realm>"; nil
	// (the default) sends a bare Bearer.
	Realm *string `json:"realm"`
}

// defaultConfig returns Kong's defaults.
func defaultConfig() Config {
	return Config{URIParamNames: []string{"jwt"}, CookieNames: []string{}, KeyClaimName: "iss",
		RunOnPreflight: true, HeaderNames: []string{"authorization"}}
}

// DefaultConfig implements plugins.Describer.
func (*Plugin) DefaultConfig() any {
	c := defaultConfig()
	return &c
}

// EntityChecks implements plugins.EntityChecker: Kong's check across
// fields, which parseConfig enforces.
func (*Plugin) EntityChecks() []any {
	return []any{map[string]any{"conditional": map[string]any{
		"if_field": "config.maximum_expiration", "if_match": map[string]any{"gt": 0},
		"then_field": "config.claims_to_verify", "then_match": map[string]any{"contains": "exp"}}}}
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
	if c.MaximumExpiration > 0 && !slices.Contains(c.ClaimsToVerify, "exp") {
		return Config{}, plugins.FieldErrors{
			"claims_to_verify": "expected to contain: exp",
			"@entity":          "failed conditional validation given value of field 'config.maximum_expiration'"}
	}
	return c, nil
}
