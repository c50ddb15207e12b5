package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

// The /schemas endpoints publish, in Kong's shape, the definitions that
// validate input: entity.FieldList and entity.Default for entities, the
// plugin registry's config structs (plugins.RecordSchema) for plugins.
// Clients such as decK read them to fill defaults before comparing a file
// with the node's entities, so a default here must be the value the node
// stores.

// schemaKinds maps Kong's entity names (kong.db[name]) to kinds.
var schemaKinds = map[string]entity.Kind{
	"certificates": entity.KindCertificate, "services": entity.KindService, "routes": entity.KindRoute, "consumers": entity.KindConsumer,
	"plugins": entity.KindPlugin, "keyauth_credentials": entity.KindKeyAuth,
	"basicauth_credentials": entity.KindBasicAuth, "jwt_secrets": entity.KindJWT,
}

// entityChecks are Kong's entity_checks that are not per field.
var entityChecks = map[entity.Kind][]any{
	entity.KindConsumer:    {map[string]any{"at_least_one_of": []string{"custom_id", "username"}}},
	entity.KindCertificate: {map[string]any{"mutually_required": []string{"cert_alt", "key_alt"}}},
	entity.KindJWT: {map[string]any{"conditional": map[string]any{"if_field": "algorithm",
		"if_match": map[string]any{"match_any": map[string]any{"patterns": []string{
			"^RS256$", "^RS384$", "^RS512$", "^PS256$", "^PS384$", "^PS512$", "^EdDSA$"}}},
		"then_field": "rsa_public_key", "then_match": map[string]any{"required": true}}}},
}

// SchemaPluginValidator is implemented by plugin validators that can
// describe their plugins' config records (*plugins.Registry does).
type SchemaPluginValidator interface {
	ConfigSchema(name string) (config map[string]any, entityChecks []any, err error)
}

// entitySchema serves GET /schemas/{entity}.
func (h *handler) entitySchema(w http.ResponseWriter, _ *http.Request, args []string) error {
	kind, ok := schemaKinds[args[0]]
	if !ok {
		if fields, ok := absentSchemas[args[0]]; ok {
			writeJSON(w, http.StatusOK, map[string]any{"fields": fields})
			return nil
		}
		return &apiError{status: http.StatusNotFound, body: message{"No entity named '" + args[0] + "'"}}
	}
	writeJSON(w, http.StatusOK, kindSchema(kind))
	return nil
}

// absentSchemas are Kong's top-level fields of the entities this node does
// not have yet (absentKinds) and of the tags listing, so that clients
// that read every schema find them. Nothing validates against them: writes
// to these entities are refused.
var absentSchemas = func() map[string][]any {
	f := func(name string, attrs map[string]any) any { return map[string]any{name: attrs} }
	str := func(extra ...any) map[string]any { return with(map[string]any{"type": "string"}, extra...) }
	id := f("id", map[string]any{"type": "string", "uuid": true, "auto": true})
	ts := func(name string) any {
		return f(name, map[string]any{"type": "integer", "timestamp": true, "auto": true})
	}
	tags := f("tags", map[string]any{"type": "set", "elements": map[string]any{"type": "string"}})
	return map[string][]any{
		"upstreams": {id, ts("created_at"), ts("updated_at"), f("name", str("required", true, "unique", true)),
			f("algorithm", str("default", "round-robin", "one_of", []string{"consistent-hashing", "least-connections", "round-robin", "latency"})),
			f("hash_on", str("default", "none")), f("hash_fallback", str("default", "none")),
			f("slots", map[string]any{"type": "integer", "default": 10000, "between": []int{10, 65536}}),
			f("host_header", str()), f("use_srv_name", map[string]any{"type": "boolean", "default": false}), tags},
		"targets": {id, ts("created_at"), ts("updated_at"),
			f("upstream", map[string]any{"type": "foreign", "reference": "upstreams", "required": true, "on_delete": "cascade"}),
			f("target", str("required", true)),
			f("weight", map[string]any{"type": "integer", "default": 100, "between": []int{0, 65535}}), tags},
		"snis": {id, ts("created_at"), ts("updated_at"), f("name", str("required", true, "unique", true)),
			f("certificate", map[string]any{"type": "foreign", "reference": "certificates", "required": true}), tags},
		"ca_certificates": {id, ts("created_at"), ts("updated_at"), f("cert", str("required", true)),
			f("cert_digest", str("unique", true)), tags},
		"vaults": {id, ts("created_at"), ts("updated_at"), f("prefix", str("required", true, "unique", true)),
			f("name", str("required", true)), f("description", str()), f("config", map[string]any{"type": "record", "abstract": true}), tags},
		"tags": {f("tag", str("required", true)), f("entity_name", str("required", true)),
			f("entity_id", str("required", true))},
	}
}()

// with returns m with the key-value pairs kv added.
func with(m map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// kindSchema is Kong's schema document of kind.
func kindSchema(kind entity.Kind) map[string]any {
	defaults := defaultObject(kind)
	s := entity.Schemas[kind]
	var fields []any
	for _, f := range entity.FieldList(kind) {
		fields = append(fields, map[string]any{f.Name: kongField(kind, f, defaults[f.Name], s)})
	}
	doc := map[string]any{"fields": fields}
	if checks := entityChecks[kind]; checks != nil {
		doc["entity_checks"] = checks
	}
	return doc
}

// kongField describes field f of kind, whose default is def.
func kongField(kind entity.Kind, f entity.Field, def any, s entity.Schema) map[string]any {
	out := map[string]any{}
	switch f.Type {
	case entity.TypeString:
		out["type"] = "string"
	case entity.TypeInteger:
		out["type"] = "integer"
	case entity.TypeBoolean:
		out["type"] = "boolean"
	case entity.TypeSet, entity.TypeArray:
		out["type"] = "array"
		if f.Type == entity.TypeSet {
			out["type"] = "set"
		}
		el := map[string]any{"type": "string"}
		if f.OneOf != nil {
			el["one_of"] = f.OneOf
		}
		out["elements"] = el
	case entity.TypeHeaders:
		out["type"] = "map"
		out["keys"] = map[string]any{"type": "string"}
		out["values"] = map[string]any{"type": "array", "elements": map[string]any{"type": "string"}}
	case entity.TypeForeign:
		out["type"] = "foreign"
		out["reference"] = string(s.Foreign[f.Name])
		if slices.Contains(s.Cascade, f.Name) {
			out["on_delete"] = "cascade"
		}
	case entity.TypeRecord:
		out["type"] = "record"
		out["abstract"] = true
	case entity.TypeCIDRPorts:
		out["type"] = "set"
		out["elements"] = map[string]any{"type": "record", "fields": []any{
			map[string]any{"ip": map[string]any{"type": "string"}},
			map[string]any{"port": map[string]any{"type": "integer", "between": []int{0, 65535}}},
		}, "entity_checks": []any{map[string]any{"at_least_one_of": []any{"ip", "port"}}}}
	}
	switch f.Name {
	case "id":
		out["uuid"] = true
	case "created_at", "updated_at":
		out["timestamp"] = true
	}
	if f.Auto {
		out["auto"] = true
	}
	if f.Required {
		out["required"] = true
	}
	if slices.Contains(s.Unique, f.Name) || endpointKeys[kind] == f.Name {
		out["unique"] = true
	}
	if f.OneOf != nil && f.Type != entity.TypeSet && f.Type != entity.TypeArray {
		out["one_of"] = f.OneOf
	}
	if f.Between != nil {
		out["between"] = []int{f.Between[0], f.Between[1]}
	}
	if f.StartsWith != "" {
		out["starts_with"] = f.StartsWith
	}
	// An empty string is the zero value of a field without a default
	// (a service's host), not a default.
	if def != nil && def != "" && !f.Auto && f.Type != entity.TypeRecord {
		out["default"] = def
	}
	return out
}

// pluginSchema serves GET /schemas/plugins/{name}: the plugin's subschema
// of the plugins entity, whose config record holds its defaults.
func (h *handler) pluginSchema(w http.ResponseWriter, _ *http.Request, args []string) error {
	name := args[0]
	sv, ok := h.plugins.(SchemaPluginValidator)
	if !ok || !slices.Contains(h.plugins.Names(), name) {
		return &apiError{status: http.StatusNotFound, body: message{"No plugin named '" + name + "'"}}
	}
	config, checks, err := sv.ConfigSchema(name)
	if errors.Is(err, plugins.ErrUnknownPlugin) {
		return &apiError{status: http.StatusNotFound, body: message{"No plugin named '" + name + "'"}}
	}
	if err != nil {
		return fmt.Errorf("admin: schema of plugin %s: %w", name, err)
	}
	defaults := defaultObject(entity.KindPlugin)
	s := entity.Schemas[entity.KindPlugin]
	var fields []any
	for _, f := range entity.FieldList(entity.KindPlugin) {
		switch f.Name {
		case "consumer", "route", "service", "protocols":
			fields = append(fields, map[string]any{f.Name: kongField(entity.KindPlugin, f, defaults[f.Name], s)})
		}
	}
	fields = append(fields, map[string]any{"config": config})
	doc := map[string]any{"fields": fields}
	if checks != nil {
		doc["entity_checks"] = checks
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// validateSchema serves POST /schemas/{entity}/validate and POST
// /schemas/plugins/validate: the body is checked as a new entity would be
// (a plugin's config included), and nothing is written. References are
// not looked up, as in Kong.
func (h *handler) validateSchema(w http.ResponseWriter, r *http.Request, args []string) error {
	name := "plugins"
	if len(args) > 0 {
		name = args[0]
	}
	kind, ok := schemaKinds[name]
	if !ok {
		return &apiError{status: http.StatusNotFound, body: message{"No entity named '" + name + "'"}}
	}
	body, form, err := readBody(w, r)
	if err != nil {
		return err
	}
	if body, err = normalize(kind, body, form); err != nil {
		return err
	}
	for field := range entity.Schemas[kind].Foreign {
		if ref, ok := body[field].(map[string]any); ok && ref["id"] == nil {
			delete(body, field) // named by endpoint key: exists or not, the shape is valid
		}
	}
	if _, err := h.build(nil, draft{body: body, form: form}, kind, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, message{"schema validation successful"})
	return nil
}
