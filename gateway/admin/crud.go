package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// endpointKeys names the unique field an entity can be addressed by in a
// URL besides its id (Kong's endpoint_key). A plugin is addressed by its instance_name.
var endpointKeys = map[entity.Kind]string{
	entity.KindService:   "name",
	entity.KindRoute:     "name",
	entity.KindConsumer:  "username",
	entity.KindKeyAuth:   "key",
	entity.KindBasicAuth: "username",
	entity.KindJWT:       "key",
	entity.KindPlugin:    "instance_name",
}

func (h *handler) list(c collection) endpointFunc {
	return func(w http.ResponseWriter, r *http.Request, args []string) error {
		q, err := pageQuery(r, c.kind)
		if err != nil {
			return err
		}
		if c.parent != "" {
			parent, err := h.find(r.Context(), c.parent, args[0])
			if err != nil {
				return err
			}
			q.Foreign, q.ForeignID = c.field, parent.ID
		}
		tags, err := tagQuery(r)
		if err != nil {
			return err
		}
		var page store.Page
		if cid, ok := r.URL.Query()["custom_id"]; ok && c.kind == entity.KindConsumer && c.parent == "" {
			page, err = h.byCustomID(r.Context(), cid[0], tags)
		} else if tags != nil {
			page, err = h.listTagged(r.Context(), q, tags)
		} else {
			page, err = h.store.List(r.Context(), q)
		}
		if err != nil {
			return listError(err, q.Offset)
		}
		h.writePage(w, r, page)
		return nil
	}
}

// byCustomID is GET /consumers?custom_id=: the page of the consumer with
// that custom_id (Kong's unique filter), empty when none has it or it
// fails the tag filter.
func (h *handler) byCustomID(ctx context.Context, customID string, tags *tagFilter) (store.Page, error) {
	if customID == "" {
		return store.Page{}, nil
	}
	rec, err := h.store.GetByUnique(ctx, entity.KindConsumer, "custom_id", customID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Page{}, nil
	case err != nil:
		return store.Page{}, err
	}
	if tags != nil {
		if ok, err := tags.matchRecord(rec); !ok {
			return store.Page{}, err
		}
	}
	return store.Page{Records: []store.Record{rec}}, nil
}

func (h *handler) get(c collection) endpointFunc {
	return func(w http.ResponseWriter, r *http.Request, args []string) error {
		rec, _, err := h.findItem(r.Context(), c, args)
		if err != nil {
			return err
		}
		data, ok := h.present(rec)
		if !ok {
			return errNotFound
		}
		writeRaw(w, http.StatusOK, data)
		return nil
	}
}

func (h *handler) create(c collection) endpointFunc {
	return func(w http.ResponseWriter, r *http.Request, args []string) error {
		if h.opts.DBLess {
			return dbless("create", c.kind)
		}
		body, err := h.readEntity(w, r, c.kind)
		if err != nil {
			return err
		}
		forced, err := h.parentRef(r.Context(), c, args)
		if err != nil {
			return err
		}
		e, err := h.build(nil, body, c.kind, forced)
		if err != nil {
			return err
		}
		rec, err := record(e)
		if err != nil {
			return err
		}
		op := store.Op{Type: store.OpInsert, Record: rec}
		if err := h.commit(r.Context(), []store.Op{op}, entity.InvalidationKeys(e)); err != nil {
			return storeError(err, e)
		}
		data, _ := h.present(rec)
		writeRaw(w, http.StatusCreated, data)
		return nil
	}
}

// upsert is PUT: it replaces the entity addressed by the URL, or creates it
// with that id or endpoint key.
func (h *handler) upsert(c collection) endpointFunc {
	return func(w http.ResponseWriter, r *http.Request, args []string) error {
		if h.opts.DBLess {
			return dbless("create or update", c.kind)
		}
		body, err := h.readEntity(w, r, c.kind)
		if err != nil {
			return err
		}
		forced, err := h.parentRef(r.Context(), c, args)
		if err != nil {
			return err
		}
		key := args[len(args)-1]
		old, err := h.find(r.Context(), c.kind, key)
		var oldEntity entity.Entity
		switch {
		case err == nil:
			if oldEntity, err = entity.Decode(c.kind, old.Data); err != nil {
				return fmt.Errorf("admin: %w", err)
			}
			if err := keepID(body.body, old.ID); err != nil {
				return err
			}
			forced["id"] = old.ID
			if ts, ok := createdAt(old.Data); ok {
				forced["created_at"] = ts
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		case isUUID(key):
			forced["id"] = key
		case endpointKeys[c.kind] == "":
			return errNotFound
		}
		if field := endpointKeys[c.kind]; field != "" && !isUUID(key) {
			forced[field] = key
		}
		e, err := h.build(nil, body, c.kind, forced)
		if err != nil {
			return err
		}
		return h.replace(w, r, oldEntity, e)
	}
}

// update is PATCH: it merges the body into the stored entity.
func (h *handler) update(c collection) endpointFunc {
	return func(w http.ResponseWriter, r *http.Request, args []string) error {
		if h.opts.DBLess {
			return dbless("update", c.kind)
		}
		body, err := h.readEntity(w, r, c.kind)
		if err != nil {
			return err
		}
		old, oldEntity, err := h.findItem(r.Context(), c, args)
		if err != nil {
			return err
		}
		if err := keepID(body.body, old.ID); err != nil {
			return err
		}
		base, err := decodeObject(old.Data)
		if err != nil {
			return fmt.Errorf("admin: stored %s %s: %w", c.kind, old.ID, err)
		}
		e, err := h.build(base, body, c.kind, map[string]any{"id": old.ID})
		if err != nil {
			return err
		}
		return h.replace(w, r, oldEntity, e)
	}
}

// dbless is Kong's answer to an entity write on a DB-less node.
func dbless(verb string, kind entity.Kind) error {
	return &apiError{status: http.StatusMethodNotAllowed,
		body: message{fmt.Sprintf("cannot %s '%s' entities when not using a database", verb, kind)}}
}

// keepID refuses a body that would change the id of the entity it
// updates: the id is immutable, as the URL addresses the entity by it.
func keepID(body map[string]any, id string) error {
	if v, ok := body["id"]; ok && v != nil && v != id {
		return schemaViolation(map[string]any{"id": "immutable field cannot be updated"})
	}
	return nil
}

// replace writes e, which replaces old (nil when e is new), and answers 200.
func (h *handler) replace(w http.ResponseWriter, r *http.Request, old, e entity.Entity) error {
	rec, err := record(e)
	if err != nil {
		return err
	}
	op := store.Op{Type: store.OpInsert, Record: rec}
	keys := entity.InvalidationKeys(e)
	if old != nil {
		op.Type = store.OpUpdate
		keys = append(keys, entity.InvalidationKeys(old)...)
	}
	if err := h.commit(r.Context(), []store.Op{op}, keys); err != nil {
		return storeError(err, e)
	}
	data, _ := h.present(rec)
	writeRaw(w, http.StatusOK, data)
	return nil
}

func (h *handler) delete(c collection) endpointFunc {
	return func(w http.ResponseWriter, r *http.Request, args []string) error {
		if h.opts.DBLess {
			return dbless("delete", c.kind)
		}
		_, e, err := h.findItem(r.Context(), c, args)
		switch {
		case errors.Is(err, errItemMissing):
			w.WriteHeader(http.StatusNoContent)
			return nil
		case err != nil:
			return err
		}
		if err := h.remove(r.Context(), e); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// foreign serves Kong's foreign-key endpoints, /{c}/{id}/{field}: the
// entity that the field of c's item references, read (GET), updated
// (PATCH) or replaced (PUT): /routes/{r}/service, /key-auths/{k}/consumer.
func (h *handler) foreign(c collection, field string) endpointFunc {
	target := collection{kind: entity.Schemas[c.kind].Foreign[field]}
	return func(w http.ResponseWriter, r *http.Request, args []string) error {
		rec, err := h.find(r.Context(), c.kind, args[0])
		if err != nil {
			return err
		}
		e, err := entity.Decode(c.kind, rec.Data)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		_, refs := e.Index()
		if refs[field] == "" {
			return errNotFound
		}
		id := []string{refs[field]}
		switch r.Method {
		case http.MethodPatch:
			return h.update(target)(w, r, id)
		case http.MethodPut:
			return h.upsert(target)(w, r, id)
		}
		return h.get(target)(w, r, id)
	}
}

// errItemMissing wraps store.ErrNotFound when the addressed item, not its
// parent, is missing (DELETE answers 204 for it).
var errItemMissing = fmt.Errorf("admin: item %w", store.ErrNotFound)

// findItem returns the item args address in c, decoded. A missing parent is
// store.ErrNotFound; a missing item, or one that belongs to another parent,
// is errItemMissing.
func (h *handler) findItem(ctx context.Context, c collection, args []string) (store.Record, entity.Entity, error) {
	parentID := ""
	if c.parent != "" {
		parent, err := h.find(ctx, c.parent, args[0])
		if err != nil {
			return store.Record{}, nil, err
		}
		parentID = parent.ID
	}
	rec, err := h.find(ctx, c.kind, args[len(args)-1])
	if errors.Is(err, store.ErrNotFound) {
		return store.Record{}, nil, errItemMissing
	}
	if err != nil {
		return store.Record{}, nil, err
	}
	e, err := entity.Decode(c.kind, rec.Data)
	if err != nil {
		return store.Record{}, nil, fmt.Errorf("admin: %w", err)
	}
	if c.parent != "" {
		if _, foreign := e.Index(); foreign[c.field] != parentID {
			return store.Record{}, nil, errItemMissing
		}
	}
	return rec, e, nil
}

// find returns the record of kind addressed by key: an id when key is a
// UUID, else (or when no id matches) the kind's endpoint key.
func (h *handler) find(ctx context.Context, kind entity.Kind, key string) (store.Record, error) {
	if isUUID(key) {
		rec, err := h.store.Get(ctx, kind, key)
		if !errors.Is(err, store.ErrNotFound) {
			return rec, wrapStore(err, "get", kind)
		}
	}
	field := endpointKeys[kind]
	if field == "" {
		return store.Record{}, store.ErrNotFound
	}
	rec, err := h.store.GetByUnique(ctx, kind, field, key)
	return rec, wrapStore(err, "get", kind)
}

func wrapStore(err error, op string, kind entity.Kind) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("admin: cannot %s %s: %w", op, kind, err)
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func writeRaw(w http.ResponseWriter, status int, data []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// parentRef returns the fields a nested endpoint forces on the entity it
// writes: the reference to the parent named in the URL (a route created
// under /services/{s}/routes belongs to s), or none at the top level.
func (h *handler) parentRef(ctx context.Context, c collection, args []string) (map[string]any, error) {
	forced := map[string]any{}
	if c.parent == "" {
		return forced, nil
	}
	parent, err := h.find(ctx, c.parent, args[0])
	if err != nil {
		return nil, err
	}
	forced[c.field] = map[string]any{"id": parent.ID}
	return forced, nil
}

// present returns the document of a stored entity as the Admin API shows
// it, and false when Kong would no longer show it. A key-auth credential
// with a ttl shows the whole seconds it has left as ttl (rounded down, as
// Kong's), counting down, without its stored expires_at, and is gone once
// its time is up.
func (h *handler) present(rec store.Record) ([]byte, bool) {
	if rec.Kind != entity.KindKeyAuth || !bytes.Contains(rec.Data, []byte(`"expires_at"`)) {
		return rec.Data, true
	}
	doc, err := decodeObject(rec.Data)
	if err != nil {
		return rec.Data, true
	}
	n, _ := doc["expires_at"].(json.Number)
	exp, err := n.Int64()
	if err != nil {
		return rec.Data, true
	}
	left := time.UnixMilli(exp).Sub(h.now())
	if left <= 0 {
		return nil, false
	}
	delete(doc, "expires_at")
	doc["ttl"] = int64(left / time.Second)
	data, err := json.Marshal(doc)
	if err != nil {
		return rec.Data, true
	}
	return data, true
}
