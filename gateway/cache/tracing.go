package cache

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// results names Result values in span attributes.
var results = [...]string{Miss: "miss", Hit: "hit", NegativeHit: "negative_hit", StaleHit: "stale_hit"}

// String returns the result's name: hit, miss, negative_hit or stale_hit.
func (r Result) String() string { return results[r] }

// tracedGet is Get inside a "sluice.cache.get" span whose
// sluice.cache.result says hit, miss, negative_hit or stale_hit; a miss's
// datastore query (the Loader's) is its child span.
func (c *Cache) tracedGet(ctx context.Context, key entity.CacheKey) (entity.Entity, Result, error) {
	ctx, span := c.tracer.Start(ctx, "sluice.cache.get", trace.WithAttributes(attribute.String("sluice.entity", string(key.Kind))))
	defer span.End()
	e, res, err := c.get(ctx, key)
	span.SetAttributes(attribute.String("sluice.cache.result", res.String()))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return e, res, err
}
