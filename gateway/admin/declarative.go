package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Declarative reads and writes configurations in Kong's declarative format
// (the file `kong config db_import` and decK use): `_format_version`, then
// services, routes, consumers, plugins and keyauth_credentials,
// basicauth_credentials and jwt_secrets, nested
// (a service's routes and plugins, a consumer's plugins and credentials)
// or flat with references by name, username or id. Every entity is built
// and validated as the Admin API builds a POSTed one. It is safe for
// concurrent use.
type Declarative struct {
	h *handler
}

// NewDeclarative returns a Declarative on opts, as New's. Options.Store is
// needed by Import and Export only; Cluster, when set, turns an import's
// cache keys into cluster events written with it.
func NewDeclarative(opts Options) *Declarative {
	return &Declarative{h: New(opts).(*handler)}
}

// DeclarativeError lists every problem of a configuration, one per entity
// field, each prefixed with where it is ("services[1].routes[0]: ...").
type DeclarativeError struct {
	Problems []string
}

func (e *DeclarativeError) Error() string {
	return fmt.Sprintf("declarative config is invalid: %d errors:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// formatVersions are the _format_version values Kong 3.x reads.
var formatVersions = []string{"1.1", "2.1", "3.0"}

// absentKeys are the top-level keys of entities this node does not have:
// accepted empty, refused otherwise.
var absentKeys = []string{"upstreams", "targets", "snis", "ca_certificates", "vaults", "keys", "key_sets",
	"consumer_groups", "hmacauth_credentials", "acls", "oauth2_credentials",
	"mtls_auth_credentials", "filter_chains", "partials"}

// declEntry is one entity of the file: its kind, body and where it is.
type declEntry struct {
	kind entity.Kind
	body map[string]any
	at   string
}

// Parse reads a configuration (YAML or JSON) and returns its entities in
// dependency order, with ids assigned: an entity without one gets a UUID
// derived from its kind and endpoint key, a plugin from its name and what
// it applies to (the same on every import), and an entity with neither a
// random one. It returns a *DeclarativeError listing every problem.
func (d *Declarative) Parse(data []byte) ([]entity.Entity, error) {
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, &DeclarativeError{Problems: []string{"cannot parse: " + err.Error()}}
	}
	doc, err := toJSONObject(raw)
	if err != nil {
		return nil, &DeclarativeError{Problems: []string{"the configuration must be an object"}}
	}
	var problems []string
	bad := func(at, msg string) { problems = append(problems, at+": "+msg) }
	switch v, _ := doc["_format_version"].(string); {
	case v == "":
		bad("_format_version", "required field missing")
	case !slices.Contains(formatVersions, v):
		bad("_format_version", "expected one of: "+strings.Join(formatVersions, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		v := doc[k]
		switch {
		case strings.HasPrefix(k, "_"):
		case slices.Contains(absentKeys, k):
			if list, _ := v.([]any); len(list) > 0 {
				bad(k, "not supported by this node yet")
			}
		case !slices.ContainsFunc(topLevel, func(tl topLevelKey) bool { return tl.key == k }):
			bad(k, "unknown field")
		}
	}
	transform := true
	switch v := doc["_transform"].(type) {
	case nil:
	case bool:
		transform = v
	default:
		bad("_transform", "expected a boolean")
	}
	entries, refs := flatten(doc, bad)
	if len(problems) > 0 {
		return nil, &DeclarativeError{Problems: problems}
	}
	var out []entity.Entity
	seen := map[entity.CacheKey]string{} // where each entity is, by id
	for _, en := range entries {
		e, err := d.buildEntry(en, refs, transform)
		if err != nil {
			problems = append(problems, problemsOf(en.at, err)...)
			continue
		}
		k := entity.CacheKey{Kind: e.EntityKind(), ID: e.PrimaryKey()}
		if prev, dup := seen[k]; dup {
			bad(en.at, "duplicate "+string(k.Kind)+": the same as "+prev)
			continue
		}
		seen[k] = en.at
		out = append(out, e)
	}
	if len(problems) > 0 {
		return nil, &DeclarativeError{Problems: problems}
	}
	return out, nil
}

// toJSONObject turns a YAML document into a JSON object with json.Number
// numbers, as the Admin API's bodies.
func toJSONObject(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeObject(data)
}

// nesting says which arrays an entity of a kind may nest, and the foreign
// field of the nested kind that points back to it.
var nesting = map[entity.Kind][]struct {
	key   string
	kind  entity.Kind
	field string
}{
	entity.KindService: {{"routes", entity.KindRoute, "service"}, {"plugins", entity.KindPlugin, "service"}},
	entity.KindRoute:   {{"plugins", entity.KindPlugin, "route"}},
	entity.KindConsumer: {{"plugins", entity.KindPlugin, "consumer"}, {"keyauth_credentials", entity.KindKeyAuth, "consumer"},
		{"basicauth_credentials", entity.KindBasicAuth, "consumer"}, {"jwt_secrets", entity.KindJWT, "consumer"}},
}

// topLevelKey is a top-level array of the file and the kind it holds.
type topLevelKey struct {
	key  string
	kind entity.Kind
}

// topLevel are the top-level arrays, in dependency order.
var topLevel = []topLevelKey{
	{"certificates", entity.KindCertificate}, {"services", entity.KindService}, {"routes", entity.KindRoute}, {"consumers", entity.KindConsumer},
	{"plugins", entity.KindPlugin}, {"keyauth_credentials", entity.KindKeyAuth},
	{"basicauth_credentials", entity.KindBasicAuth}, {"jwt_secrets", entity.KindJWT},
}

// flatten lists the entities of doc, nested ones with their parent's
// reference set, assigns their ids and indexes them by endpoint key for
// references (refs[kind][name] = id).
func flatten(doc map[string]any, bad func(at, msg string)) ([]declEntry, map[entity.Kind]map[string]string) {
	refs := map[entity.Kind]map[string]string{}
	var entries []declEntry
	var walk func(kind entity.Kind, list any, at string, parent map[string]any)
	walk = func(kind entity.Kind, list any, at string, parent map[string]any) {
		items, ok := list.([]any)
		if list != nil && !ok {
			bad(at, "expected an array")
			return
		}
		for i, it := range items {
			where := fmt.Sprintf("%s[%d]", at, i)
			body, ok := it.(map[string]any)
			if !ok {
				bad(where, "expected a record")
				continue
			}
			nested := map[string]any{}
			for _, n := range nesting[kind] {
				if v, ok := body[n.key]; ok {
					nested[n.key] = v
					delete(body, n.key)
				}
			}
			for k, v := range parent {
				body[k] = v
			}
			id, _ := body["id"].(string)
			key := endpointKeys[kind]
			name, _ := body[key].(string)
			switch {
			case id != "":
			case name != "":
				id = stableID(string(kind) + ":" + name)
			case kind == entity.KindCertificate && body["cert"] != nil:
				id = stableID(fmt.Sprintf("certificates:%v", body["cert"]))
			case kind == entity.KindPlugin:
				// Named by what it applies to, once references are resolved
				// (buildEntry); nothing nests under a plugin.
			default:
				id = uuid.NewString()
			}
			if id != "" {
				body["id"] = id
			}
			if refs[kind] == nil {
				refs[kind] = map[string]string{}
			}
			if _, dup := refs[kind][id]; dup && id != "" {
				bad(where, fmt.Sprintf("duplicate %s: another entity has the id or %s '%s'", kind, key, firstNonEmpty(name, id)))
				continue
			}
			if id != "" {
				refs[kind][id] = id
			}
			if name != "" {
				refs[kind][name] = id
			}
			entries = append(entries, declEntry{kind: kind, body: body, at: where})
			for _, n := range nesting[kind] {
				walk(n.kind, nested[n.key], where+"."+n.key, map[string]any{n.field: map[string]any{"id": id}})
			}
		}
	}
	for _, tl := range topLevel {
		walk(tl.kind, doc[tl.key], tl.key, nil)
	}
	// Dependency order: every service before any route, and so on.
	slices.SortStableFunc(entries, func(a, b declEntry) int {
		return slices.Index(entity.Kinds, a.kind) - slices.Index(entity.Kinds, b.kind)
	})
	return entries, refs
}

// buildEntry resolves en's references within the file (a name, username
// or id string, or {"id"} / {"name"} objects) and builds its entity;
// transform is the file's _transform (false: passwords are hashes already).
func (d *Declarative) buildEntry(en declEntry, refs map[entity.Kind]map[string]string, transform bool) (entity.Entity, error) {
	for field, target := range entity.Schemas[en.kind].Foreign {
		var key string
		switch r := en.body[field].(type) {
		case string:
			key = r
		case map[string]any:
			for _, k := range []string{"id", endpointKeys[target]} {
				if s, ok := r[k].(string); ok && s != "" {
					key = s
					break
				}
			}
		default:
			continue
		}
		id, ok := refs[target][key]
		if !ok {
			return nil, schemaViolation(map[string]any{field: fmt.Sprintf("references no %s in the file: '%s'", target, key)})
		}
		en.body[field] = map[string]any{"id": id}
	}
	if _, ok := en.body["id"]; !ok && en.kind == entity.KindPlugin {
		en.body["id"] = stableID(fmt.Sprintf("plugins:%v:%s:%s:%s", en.body["name"],
			refOf(en.body["route"]), refOf(en.body["service"]), refOf(en.body["consumer"])))
	}
	body, err := normalize(en.kind, en.body, false)
	if err != nil {
		return nil, err
	}
	return d.h.build(nil, draft{body: body, keepUpdatedAt: true, transformed: !transform}, en.kind, nil)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// stableID is the id of an entity the file names by key but gives no id:
// the same on every import of the file, so that importing it again
// replaces the entity instead of adding one.
func stableID(key string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("sluice:"+key)).String()
}

// refOf is the id of a resolved reference, "" for none.
func refOf(v any) string {
	m, _ := v.(map[string]any)
	id, _ := m["id"].(string)
	return id
}

// problemsOf turns a build error into problems prefixed with at.
func problemsOf(at string, err error) []string {
	var ae *apiError
	if !errors.As(err, &ae) {
		return []string{at + ": " + err.Error()}
	}
	ke, ok := ae.body.(kongError)
	if !ok || ke.Fields == nil {
		m, _ := ae.body.(message)
		return []string{at + ": " + m.Message}
	}
	var parts []string
	collectViolations("", ke.Fields, &parts)
	slices.Sort(parts)
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = at + ": " + p
	}
	return out
}

// Import writes ents (from Parse) to the datastore in one Apply, with the
// cluster events of their cache keys: an entity whose id exists is
// replaced when it changed (keeping its created_at), others are inserted.
// Entities not in ents are left alone, as Kong's db_import does.
func (d *Declarative) Import(ctx context.Context, ents []entity.Entity) error {
	existing := map[entity.CacheKey]entity.Entity{}
	for _, e := range ents {
		old, err := d.h.store.Get(ctx, e.EntityKind(), e.PrimaryKey())
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return fmt.Errorf("declarative: cannot read %s %s: %w", e.EntityKind(), e.PrimaryKey(), err)
		}
		oe, err := entity.Decode(old.Kind, old.Data)
		if err != nil {
			return fmt.Errorf("declarative: %w", err)
		}
		existing[entity.CacheKey{Kind: e.EntityKind(), ID: e.PrimaryKey()}] = oe
	}
	ops, keys, err := writeOps(ents, existing)
	if err != nil || len(ops) == 0 {
		return err
	}
	if err := d.h.commit(ctx, ops, keys); err != nil {
		return fmt.Errorf("declarative: cannot import %d entities: %w", len(ops), err)
	}
	return nil
}

// writeOps returns the ops that write ents over the stored entities
// existing (by kind and id), and the cache keys they touch: inserts for new
// entities, updates for changed ones (keeping created_at), nothing for
// unchanged ones.
func writeOps(ents []entity.Entity, existing map[entity.CacheKey]entity.Entity) ([]store.Op, []entity.CacheKey, error) {
	var ops []store.Op
	var keys []entity.CacheKey
	for _, e := range ents {
		rec, err := record(e)
		if err != nil {
			return nil, nil, err
		}
		op := store.Op{Type: store.OpInsert, Record: rec}
		if old, ok := existing[entity.CacheKey{Kind: e.EntityKind(), ID: e.PrimaryKey()}]; ok {
			same, rec, err := sameAs(old, rec)
			if err != nil {
				return nil, nil, err
			}
			if same {
				continue
			}
			op = store.Op{Type: store.OpUpdate, Record: rec}
			keys = append(keys, entity.InvalidationKeys(old)...)
		}
		ops = append(ops, op)
		keys = append(keys, entity.InvalidationKeys(e)...)
	}
	return ops, keys, nil
}

// Export returns every entity of the datastore in Kong's declarative
// format, flat: references are ids, credentials with a ttl show the
// seconds left.
func (d *Declarative) Export(ctx context.Context) ([]byte, error) {
	doc := map[string]any{"_format_version": "3.0", "_transform": false}
	for _, tl := range topLevel {
		all, err := d.h.listAll(ctx, store.ListQuery{Kind: tl.kind})
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			continue
		}
		list := make([]any, 0, len(all))
		for _, e := range all {
			rec, err := record(e)
			if err != nil {
				return nil, err
			}
			data, ok := d.h.present(rec)
			if !ok {
				continue
			}
			obj, err := decodeObject(data)
			if err != nil {
				return nil, err
			}
			for field := range entity.Schemas[tl.kind].Foreign {
				if ref, ok := obj[field].(map[string]any); ok {
					obj[field] = ref["id"]
				}
			}
			list = append(list, obj)
		}
		doc[tl.key] = list
	}
	var y any
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, &y); err != nil {
		return nil, err
	}
	return yaml.Marshal(y)
}
