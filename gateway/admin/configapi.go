package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// maxConfigBody bounds a POST /config body: a whole configuration, much
// larger than an entity's.
const maxConfigBody = 256 << 20

// codeInvalidDeclarative is Kong's code for an invalid declarative
// configuration (K@3.x:kong/db/errors.lua, INVALID_DECLARATIVE_CONFIGURATION).
const codeInvalidDeclarative = 14

var errNotDBLess = &apiError{status: http.StatusBadRequest,
	body: message{"this endpoint is only available when Kong is configured to not use a database"}}

// getConfig serves GET /config on a DB-less node: {"config": "<yaml>"}.
func (h *handler) getConfig(w http.ResponseWriter, r *http.Request, _ []string) error {
	if !h.opts.DBLess {
		return errNotDBLess
	}
	data, err := (&Declarative{h: h}).Export(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"config": string(data)})
	return nil
}

// postConfig serves POST /config on a DB-less node: the body (a JSON or
// YAML configuration, or a "config" form or JSON field holding one)
// replaces every entity at once. An invalid configuration is refused with
// every problem listed, and changes nothing.
func (h *handler) postConfig(w http.ResponseWriter, r *http.Request, _ []string) error {
	if !h.opts.DBLess {
		return errNotDBLess
	}
	data, err := configBody(w, r)
	if err != nil {
		return err
	}
	d := &Declarative{h: h}
	ents, err := d.Parse(data)
	var de *DeclarativeError
	if errors.As(err, &de) {
		return &apiError{status: http.StatusBadRequest, body: kongError{Code: codeInvalidDeclarative,
			Name: "invalid declarative configuration", Message: de.Error(),
			Fields: map[string]any{"@entity": de.Problems}}}
	}
	if err != nil {
		return err
	}
	if err := d.Replace(r.Context(), ents); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, e := range ents {
		counts[string(e.EntityKind())]++
	}
	writeJSON(w, http.StatusCreated, map[string]any{"message": "configuration loaded", "entities": counts})
	return nil
}

// configBody returns the configuration a POST /config carries.
func configBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxConfigBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data" {
		if err := r.ParseMultipartForm(maxConfigBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return nil, bodyError(err)
		}
		return []byte(r.FormValue("config")), nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	if mt == "application/json" {
		if obj, err := decodeJSON(data); err == nil {
			if s, ok := obj["config"].(string); ok {
				return []byte(s), nil
			}
		}
	}
	return data, nil
}

// Replace makes ents the datastore's whole configuration in one Apply:
// entities not in ents are deleted, new ones inserted, changed ones
// replaced (keeping their created_at), and the cache keys of all those
// invalidated; an entity that did not change is not written, so a swap
// costs what it changes. The deletes come first, so that a new entity may
// take the name of one it replaces.
func (d *Declarative) Replace(ctx context.Context, ents []entity.Entity) error {
	keep := make(map[entity.CacheKey]bool, len(ents))
	for _, e := range ents {
		keep[entity.CacheKey{Kind: e.EntityKind(), ID: e.PrimaryKey()}] = true
	}
	var ops []store.Op
	var keys []entity.CacheKey
	existing := map[entity.CacheKey]entity.Entity{}
	kinds := slices.Clone(entity.Kinds)
	slices.Reverse(kinds) // dependents first
	for _, kind := range kinds {
		all, err := d.h.listAll(ctx, store.ListQuery{Kind: kind})
		if err != nil {
			return err
		}
		for _, old := range all {
			k := entity.CacheKey{Kind: kind, ID: old.PrimaryKey()}
			existing[k] = old
			if !keep[k] {
				ops = append(ops, store.Op{Type: store.OpDelete, Record: store.Record{Kind: kind, ID: k.ID}})
				keys = append(keys, entity.InvalidationKeys(old)...)
			}
		}
	}
	writes, wkeys, err := writeOps(ents, existing)
	if err != nil {
		return err
	}
	ops, keys = append(ops, writes...), append(keys, wkeys...)
	if len(ops) == 0 {
		return nil
	}
	if err := d.h.commit(ctx, ops, keys); err != nil {
		return fmt.Errorf("declarative: cannot replace the configuration: %w", err)
	}
	return nil
}

// sameAs reports whether rec, the new version of the stored entity old,
// differs from it only by its timestamps, and returns rec with old's
// created_at (and, when the same, updated_at).
func sameAs(old entity.Entity, rec store.Record) (bool, store.Record, error) {
	oldData, err := json.Marshal(old)
	if err != nil {
		return false, rec, err
	}
	o, err := decodeObject(oldData)
	if err != nil {
		return false, rec, err
	}
	n, err := decodeObject(rec.Data)
	if err != nil {
		return false, rec, err
	}
	n["created_at"] = o["created_at"]
	updated, hasUpdated := n["updated_at"]
	if hasUpdated {
		n["updated_at"] = o["updated_at"]
	}
	a, _ := json.Marshal(o)
	b, err := json.Marshal(n)
	if err != nil {
		return false, rec, err
	}
	if string(a) == string(b) {
		return true, rec, nil
	}
	if hasUpdated {
		n["updated_at"] = updated
		if b, err = json.Marshal(n); err != nil {
			return false, rec, err
		}
	}
	rec.Data = b
	return false, rec, nil
}
