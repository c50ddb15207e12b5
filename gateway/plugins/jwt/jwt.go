// Package jwt implements Kong's jwt plugin: it authenticates a request by a
// JSON Web Token (from the query, a cookie or a Bearer header) signed with
// the secret or key of one of the consumer's jwt_secrets, and sets the
// consumer for the plugins that run after it.
package jwt

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "jwt"
	Priority = 1450
)

// Kong's messages.
const (
	msgUnauthorized = "Unauthorized"
	msgMultiple     = "Multiple tokens provided"
	msgBadAlg       = "Invalid algorithm"
	msgBadSecret    = "Invalid key/secret"
	msgBadSignature = "Invalid signature"
	msgUnexpected   = "An unexpected error occurred"
)

// Credentials looks up jwt secrets (by key) and consumers. Both methods
// return nil, nil when the entity does not exist and an error only when
// the lookup itself failed. The node wires it to the entity cache. The key
// is request memory, valid only during the call.
type Credentials interface {
	JWTSecret(ctx context.Context, key string) (*entity.JWTSecret, error)
	Consumer(ctx context.Context, id string) (*entity.Consumer, error)
}

// Plugin is the jwt plugin. It is safe for concurrent use.
type Plugin struct {
	creds Credentials
	now   func() time.Time // checks exp, nbf and maximum_expiration
}

// New returns the jwt plugin, looking secrets up through creds.
func New(creds Credentials) *Plugin { return &Plugin{creds: creds, now: time.Now} }

// Name implements plugins.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements plugins.Plugin.
func (*Plugin) Priority() int { return Priority }

// Configure implements plugins.Plugin.
func (p *Plugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	h := &handler{Config: cfg, creds: p.creds, now: p.now, challenge: "Bearer"}
	if cfg.Realm != nil {
		h.challenge = `Bearer realm="` + *cfg.Realm + `"`
	}
	h.invalid = h.challenge + ` error="invalid_token"`
	h.noKey = "No mandatory '" + cfg.KeyClaimName + "' in claims"
	h.emptyKey = "Invalid '" + cfg.KeyClaimName + "' in claims"
	h.unknownKey = "No credentials found for given '" + cfg.KeyClaimName + "'"
	return h, nil
}

// handler is one configured jwt instance. Its JSON form is its Config.
type handler struct {
	Config
	creds Credentials
	now   func() time.Time
	// challenge and invalid are the WWW-Authenticate values of a 401
	// without a token and with a bad one; the messages name the key claim.
	challenge, invalid          string
	noKey, emptyKey, unknownKey string
}

// failure is why a request is not authenticated: Kong's 401 message, or
// its per-claim errors as the body.
type failure struct {
	msg    string
	claims map[string]string
	// header is the WWW-Authenticate value; "" sends none.
	header string
}

// Access implements plugins.Accessor.
func (h *handler) Access(c *plugins.Context) {
	if !h.RunOnPreflight && c.Request.Method() == http.MethodOptions {
		return
	}
	if h.Anonymous != nil && c.Credential != nil {
		return // an earlier auth plugin authenticated: logical OR, done
	}
	secret, consumer, f, err := h.authenticate(c)
	switch {
	case err != nil:
		plugins.LookupFailed(c, err)
	case f != nil && h.Anonymous != nil:
		h.anonymous(c)
	case f != nil:
		h.refuse(c, f)
	default:
		c.Authenticate(consumer, secret, false)
		plugins.SetConsumerHeaders(c.Upstream, consumer, secret.Key, false)
	}
}

// authenticate finds, parses and verifies the request's token, as Kong's
// do_authentication. err is a failed lookup.
func (h *handler) authenticate(c *plugins.Context) (*entity.JWTSecret, *entity.Consumer, *failure, error) {
	raw, n := h.findToken(c.Request)
	switch {
	case n == 0:
		return nil, nil, &failure{msg: msgUnauthorized, header: h.challenge}, nil
	case n > 1:
		return nil, nil, h.invalidToken(msgMultiple), nil
	}
	t, err := parseToken(raw)
	if err != nil {
		return nil, nil, h.invalidToken("Bad token; " + err.Error()), nil
	}
	key, f := h.keyOf(t)
	if f != nil {
		return nil, nil, f, nil
	}
	secret, err := h.creds.JWTSecret(c.Ctx, key)
	if err != nil {
		return nil, nil, nil, err
	}
	if secret == nil || secret.Consumer == nil {
		return nil, nil, h.invalidToken(h.unknownKey), nil
	}
	if f := h.verify(t, secret); f != nil {
		return nil, nil, f, nil
	}
	consumer, err := h.creds.Consumer(c.Ctx, secret.Consumer.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	if consumer == nil {
		return nil, nil, &failure{msg: "Could not find consumer for '" + h.KeyClaimName + "=" + key + "'"}, nil
	}
	return secret, consumer, nil, nil
}

// findToken returns the request's token and how many distinct ones it
// carries: query arguments, then cookies, then "Bearer" headers.
func (h *handler) findToken(r plugins.Request) (string, int) {
	var first string
	n := 0
	add := func(t string) {
		switch {
		case t == "" || n > 0 && t == first:
		case n == 0:
			first, n = t, 1
		default:
			n = 2
		}
	}
	for _, name := range h.URIParamNames {
		if v, ok := r.Query(name); ok {
			add(v)
		}
	}
	if len(h.CookieNames) > 0 {
		if v, ok := r.Header("Cookie"); ok {
			for _, name := range h.CookieNames {
				add(cookie(v, name))
			}
		}
	}
	for _, name := range h.HeaderNames {
		if v, ok := r.Header(name); ok {
			add(bearer(v))
		}
	}
	return first, n
}

// keyOf returns the value of the key claim, which names the secret.
func (h *handler) keyOf(t *token) (string, *failure) {
	v, ok := t.claim(h.KeyClaimName)
	if !ok {
		return "", h.invalidToken(h.noKey)
	}
	var key string
	switch v := v.(type) {
	case string:
		key = v
	case float64:
		key = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if key == "" {
		return "", h.invalidToken(h.emptyKey)
	}
	return key, nil
}

// verify checks t's algorithm and signature against secret, then the
// claims the config lists.
func (h *handler) verify(t *token, secret *entity.JWTSecret) *failure {
	alg := secret.Algorithm
	if alg == "" {
		alg = "HS256"
	}
	if t.alg != alg {
		return h.invalidToken(msgBadAlg)
	}
	if strings.HasPrefix(alg, "HS") {
		key := []byte(secret.Secret)
		if h.SecretIsBase64 {
			var err error
			if key, err = decodeSegment(secret.Secret); err != nil { // base64url, as Kong's
				return h.invalidToken(msgBadSecret)
			}
		}
		if !t.verifyHMAC(key) {
			return h.invalidToken(msgBadSignature)
		}
	} else {
		if secret.RSAPublicKey == nil || *secret.RSAPublicKey == "" {
			return h.invalidToken(msgBadSecret)
		}
		pub, err := entity.ParsePublicKey(*secret.RSAPublicKey)
		if err != nil {
			return h.invalidToken(msgBadSecret)
		}
		if !t.verifyPublic(pub) {
			return h.invalidToken(msgBadSignature)
		}
	}
	return h.checkClaims(t)
}

// checkClaims verifies claims_to_verify and maximum_expiration against the
// clock, in whole seconds as Kong's ngx.time().
func (h *handler) checkClaims(t *token) *failure {
	now := float64(h.now().Unix())
	var errs map[string]string
	for _, name := range h.ClaimsToVerify {
		v, ok := number(t.claims[name])
		msg := ""
		switch {
		case !ok:
			msg = "must be a number"
		case name == "nbf" && v > now:
			msg = "token not valid yet"
		case name == "exp" && v <= now:
			msg = "token expired"
		}
		if msg != "" {
			if errs == nil {
				errs = map[string]string{}
			}
			errs[name] = msg
		}
	}
	if len(errs) == 0 && h.MaximumExpiration > 0 {
		if exp, ok := number(t.claims["exp"]); !ok || exp-now > h.MaximumExpiration {
			errs = map[string]string{"exp": "exceeds maximum allowed expiration"}
		}
	}
	if len(errs) > 0 {
		return &failure{claims: errs, header: h.invalid}
	}
	return nil
}

func (h *handler) invalidToken(msg string) *failure {
	return &failure{msg: msg, header: h.invalid}
}

// refuse answers f: 401 with Kong's message or claim errors.
func (h *handler) refuse(c *plugins.Context, f *failure) {
	var headers []string
	if f.header != "" {
		headers = []string{"WWW-Authenticate", f.header}
	}
	if f.claims == nil {
		c.ExitMessage(http.StatusUnauthorized, f.msg, headers...)
		return
	}
	body, _ := json.Marshal(f.claims)
	c.Response.SetHeader("Content-Type", "application/json; charset=utf-8")
	c.Exit(http.StatusUnauthorized, body, headers...)
}

// anonymous lets the request through as the configured anonymous consumer.
func (h *handler) anonymous(c *plugins.Context) {
	plugins.AuthenticateAnonymous(c, h.creds, *h.Anonymous)
}

// bearer returns the token of an Authorization-style value, as Kong's
// pattern "\s*[Bb]earer\s+(.+)": the text after the first "Bearer" (or
// "bearer") and at least one space; "" when there is none.
func bearer(v string) string {
	for i := 0; i+len("bearer") < len(v); i++ {
		if (v[i] != 'B' && v[i] != 'b') || v[i+1:i+6] != "earer" {
			continue
		}
		rest := v[i+6:]
		trimmed := strings.TrimLeft(rest, " \t\r\n\f\v")
		if len(trimmed) < len(rest) && trimmed != "" {
			return trimmed
		}
	}
	return ""
}

// cookie returns the value of the cookie name in a Cookie header, "" when
// absent.
func cookie(header, name string) string {
	for part := range strings.SplitSeq(header, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

var (
	_ plugins.Plugin        = (*Plugin)(nil)
	_ plugins.Describer     = (*Plugin)(nil)
	_ plugins.EntityChecker = (*Plugin)(nil)
	_ plugins.Accessor      = (*handler)(nil)
)
