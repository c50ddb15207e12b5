package plugins

import (
	"context"
	"errors"
	"net/http"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Consumers looks consumers up by id: (nil, nil) when there is none.
type Consumers interface {
	Consumer(ctx context.Context, id string) (*entity.Consumer, error)
}

// AuthenticateAnonymous lets a request that failed authentication through
// as the anonymous consumer with this id, as Kong's auth plugins do when
// their anonymous setting is set: a consumer that does not exist is Kong's
// 500 naming it, a failed lookup LookupFailed's answer.
func AuthenticateAnonymous(c *Context, consumers Consumers, id string) {
	consumer, err := consumers.Consumer(c.Ctx, id)
	switch {
	case err != nil:
		LookupFailed(c, err)
	case consumer == nil:
		c.ExitMessage(http.StatusInternalServerError, "anonymous consumer "+id+" is configured but doesn't exist")
	default:
		c.Authenticate(consumer, nil, true) // a nil entity.Entity, not a typed nil credential
		SetConsumerHeaders(c.Upstream, consumer, "", true)
	}
}

// BodyFailed answers a plugin whose Request.Body read failed: 413 with
// tooLarge when the body is over the plugin's limit (ErrBodyTooLarge), 400
// when the client's body is broken (ErrClientBody), else Kong's 500. The
// body is never cut short to fit.
func BodyFailed(c *Context, err error, tooLarge string) {
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		c.ExitMessage(http.StatusRequestEntityTooLarge, tooLarge)
	case errors.Is(err, ErrClientBody):
		c.ExitMessage(http.StatusBadRequest, "Bad request")
	default:
		c.ExitMessage(http.StatusInternalServerError, "An unexpected error occurred")
	}
}

// LookupFailed answers a credential or consumer lookup that failed: 503
// when the datastore is unavailable (store.ErrUnavailable), else Kong's
// 500.
func LookupFailed(c *Context, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		c.ExitMessage(http.StatusServiceUnavailable, "The database is unreachable; try again later")
		return
	}
	c.ExitMessage(http.StatusInternalServerError, "An unexpected error occurred")
}

// SetConsumerHeaders tells the service who the consumer of an
// authenticated request is, with Kong's headers (X-Consumer-ID,
// X-Consumer-Custom-ID, X-Consumer-Username, X-Credential-Identifier,
// X-Anonymous-Consumer); headers the client sent under these names are
// replaced or removed. credID is the credential's identifier (its id, key or
// username, as each plugin says), "" for the anonymous consumer.
func SetConsumerHeaders(u Upstream, consumer *entity.Consumer, credID string, anonymous bool) {
	u.SetHeader("X-Consumer-ID", consumer.ID)
	setOrClear(u, "X-Consumer-Custom-ID", consumer.CustomID)
	setOrClear(u, "X-Consumer-Username", consumer.Username)
	if credID == "" {
		u.ClearHeader("X-Credential-Identifier")
	} else {
		u.SetHeader("X-Credential-Identifier", credID)
	}
	if anonymous {
		u.SetHeader("X-Anonymous-Consumer", "true")
	} else {
		u.ClearHeader("X-Anonymous-Consumer")
	}
}

func setOrClear(u Upstream, name string, v *string) {
	if v == nil {
		u.ClearHeader(name)
		return
	}
	u.SetHeader(name, *v)
}
