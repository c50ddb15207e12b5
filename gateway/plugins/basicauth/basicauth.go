// Package basicauth implements Kong's basic-auth plugin: it authenticates a
// request by the username and password of its Authorization (or
// Proxy-Authorization) header, checked against the consumer's
// basicauth_credentials, and sets the consumer for the plugins that run
// after it.
package basicauth

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

// Name and Priority are Kong's.
const (
	Name     = "basic-auth"
	Priority = 1100
)

// Kong's messages. Kong 3.9 answers every failed authentication with the
// same "Unauthorized", so that a client cannot tell a wrong password from
// an unknown username.
const (
	msgUnauthorized = "Unauthorized"
	msgUnexpected   = "An unexpected error occurred"
)

// Credentials looks up basic-auth credentials (by username) and consumers.
// Both methods return nil, nil when the entity does not exist and an error
// only when the lookup itself failed. The node wires it to the entity
// cache. The username is request memory, valid only during the call.
type Credentials interface {
	BasicAuth(ctx context.Context, username string) (*entity.BasicAuthCredential, error)
	Consumer(ctx context.Context, id string) (*entity.Consumer, error)
}

// Plugin is the basic-auth plugin. It is safe for concurrent use.
type Plugin struct {
	creds Credentials
}

// New returns the basic-auth plugin, looking credentials up through creds.
func New(creds Credentials) *Plugin { return &Plugin{creds: creds} }

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
	return &handler{Config: cfg, creds: p.creds, challenge: `Basic realm="` + cfg.Realm + `"`}, nil
}

// handler is one configured basic-auth instance. Its JSON form is its
// Config.
type handler struct {
	Config
	creds Credentials
	// challenge is the WWW-Authenticate value of a 401, built once.
	challenge string
}

// Access implements plugins.Accessor, as Kong's access.lua: the
// Proxy-Authorization header is tried first, then Authorization.
func (h *handler) Access(c *plugins.Context) {
	if h.Anonymous != nil && c.Credential != nil {
		return // an earlier auth plugin authenticated: logical OR, done
	}
	cred, err := h.authenticate(c)
	switch {
	case err != nil:
		plugins.LookupFailed(c, err)
	case cred == nil:
		h.fail(c)
	default:
		h.succeed(c, cred)
	}
}

// authenticate returns the credential the request's headers prove, nil
// when they prove none.
func (h *handler) authenticate(c *plugins.Context) (*entity.BasicAuthCredential, error) {
	proxyAuth, hasProxy := c.Request.Header("Proxy-Authorization")
	auth, hasAuth := c.Request.Header("Authorization")
	if !hasProxy && !hasAuth {
		return nil, nil
	}
	var cred *entity.BasicAuthCredential
	user, pass, ok := h.credentials(c, "Proxy-Authorization", proxyAuth, hasProxy)
	if ok {
		var err error
		if cred, err = h.creds.BasicAuth(c.Ctx, user); err != nil {
			return nil, err
		}
	}
	if cred == nil {
		if user, pass, ok = h.credentials(c, "Authorization", auth, hasAuth); !ok {
			return nil, nil
		}
		var err error
		if cred, err = h.creds.BasicAuth(c.Ctx, user); err != nil || cred == nil {
			return nil, err
		}
	}
	if cred.Consumer == nil || !cred.Matches(pass) {
		return nil, nil
	}
	return cred, nil
}

// credentials parses the header name (value v, present when has) and,
// with hide_credentials, removes it from the upstream request.
func (h *handler) credentials(c *plugins.Context, name, v string, has bool) (user, pass string, ok bool) {
	if !has {
		return "", "", false
	}
	if h.HideCredentials {
		c.Upstream.ClearHeader(name)
	}
	return parseBasic(v)
}

func (h *handler) succeed(c *plugins.Context, cred *entity.BasicAuthCredential) {
	consumer, err := h.creds.Consumer(c.Ctx, cred.Consumer.ID)
	switch {
	case err != nil:
		plugins.LookupFailed(c, err)
	case consumer == nil:
		h.fail(c)
	default:
		c.Authenticate(consumer, cred, false)
		plugins.SetConsumerHeaders(c.Upstream, consumer, cred.Username, false)
	}
}

// fail answers 401, or lets the request through as the anonymous consumer
// when one is configured.
func (h *handler) fail(c *plugins.Context) {
	if h.Anonymous == nil {
		c.ExitMessage(http.StatusUnauthorized, msgUnauthorized, "WWW-Authenticate", h.challenge)
		return
	}
	plugins.AuthenticateAnonymous(c, h.creds, *h.Anonymous)
}

var (
	_ plugins.Plugin    = (*Plugin)(nil)
	_ plugins.Describer = (*Plugin)(nil)
	_ plugins.Accessor  = (*handler)(nil)
)
