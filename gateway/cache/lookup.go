package cache

import (
	"context"
	"fmt"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// StoreLoader returns the Loader that reads each key from st: a credential
// by the unique field it is cached under (its schema's CacheKey: a key-auth
// or jwt key, a basic-auth username), any other entity by its id. Pass it
// an instrumented store (gateway/store/storeobs) to time and trace the
// lookups.
func StoreLoader(st store.Store) Loader {
	return func(ctx context.Context, key entity.CacheKey) (entity.Entity, error) {
		var rec store.Record
		var err error
		if field := entity.Schemas[key.Kind].CacheKey; field != "" {
			rec, err = st.GetByUnique(ctx, key.Kind, field, key.ID)
		} else {
			rec, err = st.Get(ctx, key.Kind, key.ID)
		}
		if err != nil {
			return nil, err
		}
		return entity.Decode(key.Kind, rec.Data)
	}
}

// Credential returns the key-auth credential whose key is key, or nil when
// there is none. With Consumer it makes a Cache the key-auth plugin's
// credential source (keyauth.Credentials).
func (c *Cache) Credential(ctx context.Context, key string) (*entity.KeyAuthCredential, error) {
	return lookup[*entity.KeyAuthCredential](ctx, c, entity.CacheKey{Kind: entity.KindKeyAuth, ID: key})
}

// BasicAuth returns the basic-auth credential whose username is username,
// or nil when there is none (basicauth.Credentials, with Consumer).
func (c *Cache) BasicAuth(ctx context.Context, username string) (*entity.BasicAuthCredential, error) {
	return lookup[*entity.BasicAuthCredential](ctx, c, entity.CacheKey{Kind: entity.KindBasicAuth, ID: username})
}

// JWTSecret returns the jwt secret whose key is key, or nil when there is
// none (jwt.Credentials, with Consumer).
func (c *Cache) JWTSecret(ctx context.Context, key string) (*entity.JWTSecret, error) {
	return lookup[*entity.JWTSecret](ctx, c, entity.CacheKey{Kind: entity.KindJWT, ID: key})
}

// Consumer returns the consumer whose id is id, or nil when there is none.
func (c *Cache) Consumer(ctx context.Context, id string) (*entity.Consumer, error) {
	return lookup[*entity.Consumer](ctx, c, entity.CacheKey{Kind: entity.KindConsumer, ID: id})
}

// lookup is Get typed: the entity as a T, nil when there is none.
func lookup[T entity.Entity](ctx context.Context, c *Cache, key entity.CacheKey) (T, error) {
	var zero T
	e, _, err := c.Get(ctx, key)
	if e == nil || err != nil {
		return zero, err
	}
	t, ok := e.(T)
	if !ok {
		return zero, fmt.Errorf("cache: %s %q holds a %T", key.Kind, key.ID, e)
	}
	return t, nil
}
