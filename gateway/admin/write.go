package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// deleteAttempts bounds the retries of a cascading delete that raced a
// concurrent insert of a dependent entity.
const deleteAttempts = 3

// commit applies ops together with the cluster events of keys, in one
// transaction, then invalidates keys on this node.
func (h *handler) commit(ctx context.Context, ops []store.Op, keys []entity.CacheKey) error {
	keys = uniqueKeys(keys)
	var events []store.Event
	if h.cluster != nil && !h.opts.DBLess { // a DB-less node shares its datastore with no other node
		events = h.cluster.Events(ctx, keys)
	}
	if err := h.store.Apply(ctx, ops, events); err != nil {
		return fmt.Errorf("admin: cannot apply %d writes: %w", len(ops), err)
	}
	if h.cluster != nil {
		// The change is committed: invalidate even if the client has gone.
		h.cluster.Invalidated(context.WithoutCancel(ctx), keys)
	}
	return nil
}

// remove deletes e and, per entity.Schemas, every entity whose deletion
// cascades from it. A dependent inserted between the listing and the Apply
// makes the datastore refuse the Apply (*store.ReferencedError); remove then
// lists again, a few times.
func (h *handler) remove(ctx context.Context, e entity.Entity) error {
	for attempt := 1; ; attempt++ {
		seen := map[entity.CacheKey]bool{}
		ops, keys, err := h.cascade(ctx, e, seen)
		if err != nil {
			return err
		}
		err = h.commit(ctx, ops, keys)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted concurrently
		}
		var ref *store.ReferencedError
		if err != nil && errors.As(err, &ref) && cascades(ref.Referrer, ref.Kind) && attempt < deleteAttempts {
			continue
		}
		return err
	}
}

// cascade returns the delete ops for e and its cascading dependents, and
// their cache keys, dependents first.
func (h *handler) cascade(ctx context.Context, e entity.Entity, seen map[entity.CacheKey]bool) ([]store.Op, []entity.CacheKey, error) {
	id := entity.CacheKey{Kind: e.EntityKind(), ID: e.PrimaryKey()}
	if seen[id] {
		return nil, nil, nil
	}
	seen[id] = true
	var (
		ops  []store.Op
		keys []entity.CacheKey
	)
	for _, kind := range entity.Kinds {
		s := entity.Schemas[kind]
		for _, field := range s.Cascade {
			if s.Foreign[field] != e.EntityKind() {
				continue
			}
			deps, err := h.listAll(ctx, store.ListQuery{Kind: kind, Foreign: field, ForeignID: e.PrimaryKey()})
			if err != nil {
				return nil, nil, err
			}
			for _, dep := range deps {
				o, k, err := h.cascade(ctx, dep, seen)
				if err != nil {
					return nil, nil, err
				}
				ops, keys = append(ops, o...), append(keys, k...)
			}
		}
	}
	ops = append(ops, store.Op{Type: store.OpDelete, Record: store.Record{Kind: e.EntityKind(), ID: e.PrimaryKey()}})
	keys = append(keys, entity.InvalidationKeys(e)...)
	return ops, keys, nil
}

// listAll returns every entity q selects, page after page.
func (h *handler) listAll(ctx context.Context, q store.ListQuery) ([]entity.Entity, error) {
	q.Size = maxPageSize
	var out []entity.Entity
	for {
		page, err := h.store.List(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("admin: cannot list %s: %w", q.Kind, err)
		}
		for _, rec := range page.Records {
			e, err := entity.Decode(q.Kind, rec.Data)
			if err != nil {
				return nil, fmt.Errorf("admin: %w", err)
			}
			out = append(out, e)
		}
		if page.Next == "" {
			return out, nil
		}
		q.Offset = page.Next
	}
}

// cascades reports whether deleting an entity of kind parent deletes the
// entities of kind child that reference it.
func cascades(child, parent entity.Kind) bool {
	s := entity.Schemas[child]
	return slices.ContainsFunc(s.Cascade, func(f string) bool { return s.Foreign[f] == parent })
}

// uniqueKeys returns keys without duplicates, in first-seen order.
func uniqueKeys(keys []entity.CacheKey) []entity.CacheKey {
	seen := make(map[entity.CacheKey]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
