package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// draft is the type-checked body of a write.
type draft struct {
	body map[string]any
	// form says the body was a form: plugin config values were inferred
	// from strings and may need a second guess.
	form bool
	// keepUpdatedAt keeps the body's updated_at (a declarative import
	// restores the entity as exported) instead of setting it to now.
	keepUpdatedAt bool
	// transformed says the body's values are stored as they are (a
	// declarative file with _transform: false, as exports are): a
	// basic-auth password is already its hash.
	transformed bool
}

// readEntity reads and type-checks the body of a write to kind, and
// resolves the references it makes by endpoint key.
func (h *handler) readEntity(w http.ResponseWriter, r *http.Request, kind entity.Kind) (draft, error) {
	body, form, err := readBody(w, r)
	if err != nil {
		return draft{}, err
	}
	if body, err = normalize(kind, body, form); err != nil {
		return draft{}, err
	}
	return draft{body: body, form: form}, h.resolveRefs(r.Context(), kind, body)
}

// resolveRefs replaces each reference of body that names its entity by
// endpoint key ({"name": "s1"}) by the entity's {"id": ...}. A name no
// entity has is Kong's foreign key violation.
func (h *handler) resolveRefs(ctx context.Context, kind entity.Kind, body map[string]any) error {
	for field, target := range entity.Schemas[kind].Foreign {
		ref, ok := body[field].(map[string]any)
		if !ok || ref["id"] != nil {
			continue
		}
		key := endpointKeys[target]
		val, ok := ref[key].(string)
		if !ok {
			return schemaViolation(map[string]any{field: map[string]any{"id": "required field missing"}})
		}
		rec, err := h.store.GetByUnique(ctx, target, key, val)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return &apiError{status: http.StatusBadRequest, body: kongError{Code: codeForeignKey,
				Name: "foreign key violation",
				Message: fmt.Sprintf("the foreign key '{%s=%q}' does not reference an existing '%s' entity.",
					key, val, target),
				Fields: map[string]any{field: map[string]any{key: val}}}}
		case err != nil:
			return wrapStore(err, "get", target)
		}
		body[field] = map[string]any{"id": rec.ID}
	}
	return nil
}

// build returns the entity of kind made of base (the stored document for a
// PATCH, nil for Kong's defaults), overlaid by body and then by forced (the
// URL's id, name or parent). It assigns the id and timestamps, expands a
// service's url, validates a plugin's config, generates a missing key-auth
// or jwt key (and jwt secret), hashes a basic-auth password the body sets
// (Kong's transformation) and validates the result. body must have been normalized.
func (h *handler) build(base map[string]any, d draft, kind entity.Kind, forced map[string]any) (entity.Entity, error) {
	body := d.body
	fresh := base == nil
	if fresh {
		base = defaultObject(kind)
	}
	if kind == entity.KindService {
		if err := expandURL(body); err != nil {
			return nil, err
		}
	}
	merged := merge(base, body)
	for k, v := range forced {
		merged[k] = v
	}
	if kind == entity.KindRoute && fresh && body["strip_path"] == nil && isGRPC(merged["protocols"]) {
		merged["strip_path"] = false // Kong's grpc subschema default
	}
	keep := d.keepUpdatedAt && !isZero(body["updated_at"])
	h.autoFields(kind, merged, keep)
	defaults := defaultObject(kind)
	for name, f := range entity.Fields(kind) {
		if merged[name] == nil && !f.Nullable {
			merged[name] = defaults[name]
		}
	}
	data, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("admin: cannot encode %s: %w", kind, err)
	}
	e, err := entity.Decode(kind, data)
	if err != nil {
		return nil, schemaViolation(map[string]any{"@entity": []string{"invalid value"}})
	}
	fields := map[string]any{}
	switch v := e.(type) {
	case *entity.Plugin:
		h.pluginConfig(v, d.form, fields)
	case *entity.Certificate:
		slices.Sort(v.SNIs) // Kong shows a certificate's snis in order
	case *entity.Route:
		for field, eps := range map[string][]entity.CIDRPort{"sources": v.Sources, "destinations": v.Destinations} {
			if bad := entity.CIDRPortErrors(eps); bad != nil {
				fields[field] = cidrPortErrors(bad)
			}
		}
	case *entity.KeyAuthCredential:
		if v.Key == "" {
			v.Key = randomKey()
		}
		if _, ok := body["ttl"]; ok || fresh {
			v.ExpiresAt = 0 // a new ttl counts from this write
			if v.TTL != nil && *v.TTL > 0 {
				v.ExpiresAt = h.now().UnixMilli() + int64(*v.TTL)*1000
			}
		}
	case *entity.BasicAuthCredential:
		if _, ok := body["password"]; (ok || fresh) && !d.transformed && v.Password != "" && v.Consumer != nil {
			v.Password = entity.HashPassword(v.Consumer.ID, v.Password)
		}
	case *entity.JWTSecret:
		if v.Key == "" {
			v.Key = randomKey()
		}
		if v.Secret == "" {
			v.Secret = randomKey()
		}
	}
	for k, msg := range entity.Validate(e) {
		if _, ok := fields[k]; !ok {
			fields[k] = msg
		}
	}
	if len(fields) > 0 {
		if msg, ok := fields["@entity"].(string); ok {
			fields["@entity"] = []string{msg}
		}
		return nil, schemaViolation(fields)
	}
	return e, nil
}

// isGRPC reports whether a route's protocols (as merged from a body) are
// grpc or grpcs only.
func isGRPC(protocols any) bool {
	list, ok := protocols.([]any)
	if !ok || len(list) == 0 {
		return false
	}
	for _, p := range list {
		if p != "grpc" && p != "grpcs" {
			return false
		}
	}
	return true
}

// cidrPortErrors gives entity.CIDRPortErrors Kong's shape: an array with
// each bad element's fields at its index and null for the good ones.
func cidrPortErrors(bad []map[string]string) []any {
	last := len(bad) - 1
	for last > 0 && bad[last] == nil {
		last--
	}
	out := make([]any, last+1)
	for i, m := range bad[:last+1] {
		if m == nil {
			continue
		}
		el := map[string]any{}
		for k, msg := range m {
			el[k] = msg
			if k == "@entity" {
				el[k] = []string{msg}
			}
		}
		out[i] = el
	}
	return out
}

// autoFields sets a missing id and created_at, and updated_at when kind has
// one (unless keepUpdatedAt).
func (h *handler) autoFields(kind entity.Kind, m map[string]any, keepUpdatedAt bool) {
	now := h.now().Unix()
	if id, _ := m["id"].(string); id == "" {
		m["id"] = uuid.NewString()
	}
	if isZero(m["created_at"]) {
		m["created_at"] = now
	}
	if _, ok := entity.Fields(kind)["updated_at"]; ok && !keepUpdatedAt {
		m["updated_at"] = now
	}
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case int64:
		return v == 0
	case json.Number:
		return v == "0"
	}
	return false
}

// pluginConfig validates p's config with the plugin registry and stores
// the result (defaults applied) in p; errors go to fields. For a form body,
// whose config types were guessed, a value the plugin wants as an array or
// a string is converted and the config validated once more.
func (h *handler) pluginConfig(p *entity.Plugin, form bool, fields map[string]any) {
	if p.Name == "" {
		return
	}
	notEnabled := fmt.Sprintf("plugin '%s' not enabled; add it to the 'plugins' configuration property", p.Name)
	if h.plugins == nil {
		fields["name"] = notEnabled
		return
	}
	if !slices.Contains(h.plugins.Names(), p.Name) {
		fields["name"] = notEnabled
		return
	}
	cfg, errs, err := h.plugins.Validate(p.Name, p.Config)
	if len(errs) > 0 && form {
		if fixed, ok := regroupConfig(p.Config, errs); ok {
			if c2, e2, err2 := h.plugins.Validate(p.Name, fixed); len(e2) == 0 && err2 == nil {
				cfg, errs, err = c2, nil, nil
			}
		}
	}
	switch {
	case len(errs) > 0:
		fields["config"] = nestFieldErrors(errs)
	case err != nil:
		fields["config"] = map[string]any{"@entity": []string{err.Error()}}
	default:
		p.Config = cfg
	}
}

// nestFieldErrors turns a plugin's field errors, a nested record's keyed
// "record.field", into Kong's nested body: {"record": {"field": msg}}.
func nestFieldErrors(errs map[string]string) map[string]any {
	out := make(map[string]any, len(errs))
	for k, msg := range errs {
		m := out
		parts := strings.Split(k, ".")
		if k == "@entity" {
			parts = []string{k}
		}
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = msg
	}
	return out
}

// regroupConfig rewrites the form-decoded config so that the fields
// (nested records' included) errs reports as needing an array or a string
// get one: "apikey" becomes ["apikey"], 5 becomes "5". It reports whether
// it changed anything.
func regroupConfig(config json.RawMessage, errs map[string]string) (json.RawMessage, bool) {
	m, err := decodeObject(config)
	if err != nil {
		return nil, false
	}
	changed := false
	for field, msg := range errs {
		// A nested record's field is "record.field": walk down to it.
		parent, name := m, field
		for {
			head, rest, nested := strings.Cut(name, ".")
			if !nested {
				break
			}
			sub, ok := parent[head].(map[string]any)
			if !ok {
				break
			}
			parent, name = sub, rest
		}
		switch v := parent[name].(type) {
		case string, json.Number, bool:
			switch msg {
			case "expected an array", "expected a set":
				parent[name], changed = []any{v}, true
			case "expected a string":
				parent[name], changed = fmt.Sprint(v), true
			}
		}
	}
	if !changed {
		return nil, false
	}
	out, err := json.Marshal(m)
	return out, err == nil
}

// expandURL replaces a service body's write-only url by the protocol, host,
// port and path it stands for.
func expandURL(body map[string]any) error {
	raw, ok := body["url"]
	if !ok {
		return nil
	}
	delete(body, "url")
	s, _ := raw.(string)
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return schemaViolation(map[string]any{"url": "invalid url"})
	case u.Scheme == "":
		return schemaViolation(map[string]any{"url": "missing scheme in url"})
	case u.Hostname() == "":
		return schemaViolation(map[string]any{"url": "missing host in url"})
	}
	port := int64(entity.DefaultPort(u.Scheme))
	if p := u.Port(); p != "" {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			return schemaViolation(map[string]any{"url": "invalid port in url"})
		}
		port = n
	}
	body["protocol"], body["host"], body["port"] = u.Scheme, u.Hostname(), port
	body["path"] = nil
	if p := u.EscapedPath(); p != "" {
		body["path"] = p
	}
	return nil
}

// merge returns base overlaid by body. Objects under both are merged
// (Kong merges records such as a plugin's config); everything else in body
// replaces base's value. Neither argument is modified.
func merge(base, body map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(body))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range body {
		bm, ok1 := out[k].(map[string]any)
		vm, ok2 := v.(map[string]any)
		if ok1 && ok2 && k == "config" {
			v = merge(bm, vm)
		}
		out[k] = v
	}
	return out
}

// defaultObject returns Kong's defaults for kind as a JSON object.
func defaultObject(kind entity.Kind) map[string]any {
	data, err := json.Marshal(entity.Default(kind))
	if err != nil {
		panic(fmt.Sprintf("admin: cannot encode default %s: %v", kind, err))
	}
	m, err := decodeObject(data)
	if err != nil {
		panic(fmt.Sprintf("admin: cannot decode default %s: %v", kind, err))
	}
	return m
}

func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// createdAt returns the created_at of a stored document.
func createdAt(data []byte) (json.Number, bool) {
	var doc struct {
		CreatedAt json.Number `json:"created_at"`
	}
	if json.Unmarshal(data, &doc) != nil || doc.CreatedAt == "" {
		return "", false
	}
	return doc.CreatedAt, true
}

// record encodes e as the datastore's record.
func record(e entity.Entity) (store.Record, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return store.Record{}, fmt.Errorf("admin: cannot encode %s: %w", e.EntityKind(), err)
	}
	return store.NewRecord(e, data), nil
}

// randomKey returns 32 random hex characters, as Kong's generated keys.
func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
