// Package keyauth implements Kong's key-auth plugin: it authenticates a
// request by an API key found in a header, the query string or the body,
// and sets the consumer for the plugins that run after it.
package keyauth

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "key-auth"
	Priority = 1250
)

// Kong's messages and headers.
const (
	msgNoKey      = "No API key found in request"
	msgInvalid    = "Invalid authentication credentials"
	msgUnexpected = "An unexpected error occurred"
	// msgBodyTooLarge answers a key_in_body search of a body over maxBody:
	// the key could be past what was read, and a body is never cut.
	msgBodyTooLarge = "Request body too large for key-auth key_in_body: it reads at most 1 MiB"
	challenge       = `Key realm="kong"`
)

// Credentials looks up key-auth credentials and consumers. Both methods
// return nil, nil when the entity does not exist and an error only when the
// lookup itself failed. The lead wires it to the entity cache. The key is
// request memory, valid only during the call: an implementation that keeps
// it (as a cache key) must copy it.
type Credentials interface {
	Credential(ctx context.Context, key string) (*entity.KeyAuthCredential, error)
	Consumer(ctx context.Context, id string) (*entity.Consumer, error)
}

// Plugin is the key-auth plugin. It is safe for concurrent use.
type Plugin struct {
	creds Credentials
	now   func() time.Time // tells whether a credential's ttl has run out
}

// New returns the key-auth plugin, looking keys up through creds.
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
	h := &handler{Config: cfg, creds: p.creds, maxBody: maxBody, challenge: challenge, now: p.now}
	if cfg.Realm != nil {
		h.challenge = `Key realm="` + *cfg.Realm + `"`
	}
	return h, nil
}

// handler is one configured key-auth instance. Its JSON form is its Config.
type handler struct {
	Config
	creds Credentials
	// maxBody is the maxBody constant; tests lower it.
	maxBody int64
	// challenge is the WWW-Authenticate value of a 401, built once.
	challenge string
	now       func() time.Time
}

// Access implements plugins.Accessor.
func (h *handler) Access(c *plugins.Context) {
	if !h.RunOnPreflight && c.Request.Method() == http.MethodOptions {
		return
	}
	key, err := h.findKey(c)
	switch {
	case err != nil:
		plugins.BodyFailed(c, err, msgBodyTooLarge)
		return
	case key == "":
		h.fail(c, msgNoKey)
		return
	}
	cred, err := h.creds.Credential(c.Ctx, key)
	if err != nil {
		plugins.LookupFailed(c, err)
		return
	}
	if cred == nil || cred.Consumer == nil || cred.ExpiresAt != 0 && h.now().UnixMilli() >= cred.ExpiresAt {
		h.fail(c, msgInvalid)
		return
	}
	consumer, err := h.creds.Consumer(c.Ctx, cred.Consumer.ID)
	if err != nil {
		plugins.LookupFailed(c, err)
		return
	}
	if consumer == nil {
		h.fail(c, msgInvalid)
		return
	}
	c.Authenticate(consumer, cred, false)
	plugins.SetConsumerHeaders(c.Upstream, consumer, cred.ID, false)
}

// fail answers 401 with msg, or lets the request through as the anonymous
// consumer when one is configured.
func (h *handler) fail(c *plugins.Context, msg string) {
	if h.Anonymous == nil {
		c.ExitMessage(http.StatusUnauthorized, msg, "WWW-Authenticate", h.challenge)
		return
	}
	plugins.AuthenticateAnonymous(c, h.creds, *h.Anonymous)
}

var (
	_ plugins.Plugin   = (*Plugin)(nil)
	_ plugins.Accessor = (*handler)(nil)
)
