// Package keyauth implements Kong's key-auth plugin: it authenticates a
// request by an API key found in a header, the query string or the body,
// and sets the consumer for the plugins that run after it.
package keyauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/store"
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
	// msgUnavailable answers a lookup that needed the datastore while it
	// could not be reached (and nothing stale was cached): 503, so clients
	// and load balancers retry rather than treat it as a gateway bug.
	msgUnavailable = "The database is unreachable; try again later"
	challenge      = `Key realm="kong"`
)

// Credentials looks up key-auth credentials and consumers. Both methods
// return nil, nil when the entity does not exist and an error only when the
// lookup itself failed. The lead wires it to the entity cache.
type Credentials interface {
	Credential(ctx context.Context, key string) (*entity.KeyAuthCredential, error)
	Consumer(ctx context.Context, id string) (*entity.Consumer, error)
}

// Plugin is the key-auth plugin. It is safe for concurrent use.
type Plugin struct {
	creds Credentials
}

// New returns the key-auth plugin, looking keys up through creds.
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
	return &handler{Config: cfg, creds: p.creds}, nil
}

// handler is one configured key-auth instance. Its JSON form is its Config.
type handler struct {
	Config
	creds Credentials
}

// Access implements plugins.Handler.
func (h *handler) Access(c *plugins.Context) bool {
	if !h.RunOnPreflight && c.R.Method == http.MethodOptions {
		return true
	}
	key, ok := h.findKey(c.R)
	if !ok {
		return h.fail(c, msgNoKey)
	}
	cred, err := h.creds.Credential(c.R.Context(), key)
	if err != nil {
		return lookupFailed(c, err)
	}
	if cred == nil || cred.Consumer == nil {
		return h.fail(c, msgInvalid)
	}
	consumer, err := h.creds.Consumer(c.R.Context(), cred.Consumer.ID)
	if err != nil {
		return lookupFailed(c, err)
	}
	if consumer == nil {
		return h.fail(c, msgInvalid)
	}
	setConsumer(c, consumer, cred, false)
	return true
}

// fail answers 401 with msg, or lets the request through as the anonymous
// consumer when one is configured.
func (h *handler) fail(c *plugins.Context, msg string) bool {
	if h.Anonymous == nil {
		c.W.Header().Set("WWW-Authenticate", challenge)
		c.RespondMessage(http.StatusUnauthorized, msg)
		return false
	}
	consumer, err := h.creds.Consumer(c.R.Context(), *h.Anonymous)
	if err == nil && consumer == nil {
		err = errors.New("keyauth: anonymous consumer " + *h.Anonymous + " is configured but does not exist")
	}
	if err != nil {
		return lookupFailed(c, err)
	}
	setConsumer(c, consumer, nil, true)
	return true
}

// lookupFailed answers a failed credential or consumer lookup: 503 when the
// datastore is unavailable (store.ErrUnavailable), else Kong's 500.
func lookupFailed(c *plugins.Context, err error) bool {
	if errors.Is(err, store.ErrUnavailable) {
		c.RespondMessage(http.StatusServiceUnavailable, msgUnavailable)
		return false
	}
	c.RespondMessage(http.StatusInternalServerError, msgUnexpected)
	return false
}

// setConsumer records the consumer in c and in the upstream headers.
func setConsumer(c *plugins.Context, consumer *entity.Consumer, cred *entity.KeyAuthCredential, anonymous bool) {
	c.Consumer, c.Credential, c.Anonymous = consumer, cred, anonymous
	h := c.R.Header
	h["X-Consumer-Id"] = c.Values(consumer.ID)
	setOrDel(c, h, "X-Consumer-Custom-Id", consumer.CustomID)
	setOrDel(c, h, "X-Consumer-Username", consumer.Username)
	if cred != nil {
		h["X-Credential-Identifier"] = c.Values(cred.ID)
	} else {
		delete(h, "X-Credential-Identifier")
	}
	if anonymous {
		h["X-Anonymous-Consumer"] = c.Values("true")
	} else {
		delete(h, "X-Anonymous-Consumer")
	}
}

func setOrDel(c *plugins.Context, h http.Header, key string, v *string) {
	if v == nil {
		delete(h, key)
		return
	}
	h[key] = c.Values(*v)
}

var (
	_ plugins.Plugin  = (*Plugin)(nil)
	_ plugins.Handler = (*handler)(nil)
)
