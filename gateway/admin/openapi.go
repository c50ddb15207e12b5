package admin

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// The OpenAPI description (GET /openapi.json) is generated from the
// endpoint table, so a new endpoint appears in it as soon as it is
// registered. describe classifies each pattern; a pattern it does not know
// is described with its methods and a bare error answer, and the tests fail
// until it is taught.

// role is what an endpoint pattern serves.
type role int

const (
	roleUnknown role = iota
	roleInfo
	roleStatus
	roleEnabled
	roleOpenAPI
	roleCacheKeys
	roleCacheItem
	roleForeign // /{c}/{id}/{field}: the entity a foreign key references
	roleTags
	roleCollection
	roleItem
	roleAbsent // an entity of absentKinds: collection or item
	roleSchema
	roleSchemaValidate
	roleConfig
	roleMetrics
)

// collectionKinds maps a collection's URL segment to its kind, and
// paramNames the segment to the name of the path parameter below it.
var (
	collectionKinds = map[string]entity.Kind{
		"certificates": entity.KindCertificate, "services": entity.KindService, "routes": entity.KindRoute, "consumers": entity.KindConsumer,
		"plugins": entity.KindPlugin, "key-auth": entity.KindKeyAuth, "key-auths": entity.KindKeyAuth,
		"basic-auth": entity.KindBasicAuth, "basic-auths": entity.KindBasicAuth, "jwt": entity.KindJWT, "jwts": entity.KindJWT,
	}
	paramNames = map[string]string{
		"certificates": "certificate", "services": "service", "routes": "route", "consumers": "consumer", "plugins": "plugin",
		"key-auth": "key_auth", "key-auths": "key_auth", "cache": "cache_key", "tags": "tag",
		"basic-auth": "basic_auth", "basic-auths": "basic_auth", "jwt": "jwt", "jwts": "jwt",
		"schemas": "entity",
	}
	// schemaNames names each kind's component schema.
	schemaNames = map[entity.Kind]string{
		entity.KindCertificate: "Certificate", entity.KindService: "Service", entity.KindRoute: "Route", entity.KindConsumer: "Consumer",
		entity.KindPlugin: "Plugin", entity.KindKeyAuth: "KeyAuthCredential",
		entity.KindBasicAuth: "BasicAuthCredential", entity.KindJWT: "JWTSecret",
	}
)

// described is one endpoint pattern as OpenAPI sees it.
type described struct {
	path   string
	params []any
	role   role
	kind   entity.Kind
	nested bool
	// pattern is the endpoint's pattern, as described.
	pattern []string
}

// describe turns pattern into an OpenAPI path ("*" segments become
// parameters named after the collection before them) and classifies it.
func describe(pattern []string) described {
	d := described{path: "/"}
	segs := make([]string, len(pattern))
	for i, s := range pattern {
		segs[i] = s
		if s != "*" {
			continue
		}
		name := "param"
		if i > 0 && paramNames[pattern[i-1]] != "" {
			name = paramNames[pattern[i-1]]
		}
		segs[i] = "{" + name + "}"
		desc := "id, or the unique name, username or key"
		if name == "tag" {
			desc = "a tag"
		}
		d.params = append(d.params, map[string]any{"name": name, "in": "path", "required": true,
			"description": desc, "schema": map[string]any{"type": "string"}})
	}
	d.path += strings.Join(segs, "/")
	d.pattern = pattern
	d.role = classify(pattern)
	d.nested = len(pattern) > 2
	if d.role == roleCollection || d.role == roleItem {
		last := pattern[len(pattern)-1]
		if last == "*" {
			last = pattern[len(pattern)-2]
		}
		d.kind = collectionKinds[last]
	}
	return d
}

func classify(pattern []string) role {
	switch strings.Join(pattern, "/") {
	case "":
		return roleInfo
	case "status":
		return roleStatus
	case "plugins/enabled":
		return roleEnabled
	case "openapi.json":
		return roleOpenAPI
	case "cache":
		return roleCacheKeys
	case "cache/*":
		return roleCacheItem
	case "tags", "tags/*":
		return roleTags
	case "schemas/*", "schemas/plugins/*":
		return roleSchema
	case "schemas/*/validate", "schemas/plugins/validate":
		return roleSchemaValidate
	case "config":
		return roleConfig
	case "metrics":
		return roleMetrics
	}
	if isAbsent(pattern) {
		return roleAbsent
	}
	n := len(pattern)
	if n == 3 && pattern[1] == "*" && entity.Schemas[collectionKinds[pattern[0]]].Foreign[pattern[2]] != "" {
		return roleForeign
	}
	switch {
	case collectionKinds[pattern[n-1]] != "" && (n == 1 || n == 3 && pattern[1] == "*"):
		return roleCollection
	case pattern[n-1] == "*" && collectionKinds[pattern[n-2]] != "" && (n == 2 || n == 4 && pattern[1] == "*"):
		return roleItem
	}
	return roleUnknown
}

// openAPI returns the OpenAPI 3.0 document for the endpoint table eps.
func openAPI(eps []endpoint, version string) map[string]any {
	paths := map[string]any{}
	for _, ep := range eps {
		d := describe(ep.pattern)
		item := map[string]any{}
		if len(d.params) > 0 {
			item["parameters"] = d.params
		}
		for _, m := range slices.Sorted(maps.Keys(ep.methods)) {
			item[strings.ToLower(m)] = d.operation(m)
		}
		paths[d.path] = item
	}
	if version == "" {
		version = "dev"
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Sluice Admin API", "version": version,
			"description": "Kong-compatible Admin API. When admin_token is set, every request needs " +
				"Kong-Admin-Token: <token> or Authorization: Bearer <token>."},
		"paths":      paths,
		"components": components(),
		"security":   []any{map[string]any{}, map[string]any{"bearer": []any{}}, map[string]any{"kongAdminToken": []any{}}},
	}
}

// serveOpenAPI serves GET /openapi.json.
func (h *handler) serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ []string) error {
	writeJSON(w, http.StatusOK, openAPI(h.endpoints, h.opts.Version))
	return nil
}

// operation describes method m of d.
func (d described) operation(m string) map[string]any {
	op := map[string]any{"operationId": operationID(m, d.path), "tags": []any{d.tag()}}
	resp := map[string]any{"401": errorResponse("admin_token is set and the request lacks it")}
	var query []any
	switch d.role {
	case roleInfo:
		resp["200"] = jsonResponse("node information", ref("Info"))
	case roleStatus:
		query = []any{queryParam("unit", enumSchema("b", "k", "m", "g", "K", "M", "G")),
			queryParam("scale", map[string]any{"type": "integer", "minimum": 0, "maximum": 10})}
		resp["200"] = jsonResponse("datastore reachability and memory", ref("Status"))
		resp["400"] = errorResponse("bad unit or scale")
	case roleEnabled:
		resp["200"] = jsonResponse("available plugins", objectSchema(map[string]any{
			"enabled_plugins": arrayOf(map[string]any{"type": "string"})}, "enabled_plugins"))
	case roleOpenAPI:
		resp["200"] = jsonResponse("this document", map[string]any{"type": "object"})
	case roleMetrics:
		resp["200"] = map[string]any{"description": "the node's metrics in Prometheus' text exposition format",
			"content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}
	case roleCacheKeys:
		if m == http.MethodGet {
			query = []any{queryParam("prefix", map[string]any{"type": "string"}), sizeParam()}
			resp["200"] = jsonResponse("cached keys", objectSchema(map[string]any{
				"data": arrayOf(map[string]any{"type": "string"})}, "data"))
			resp["400"] = errorResponse("invalid size")
		} else {
			resp["204"] = map[string]any{"description": "purged on this node"}
		}
	case roleCacheItem:
		if m == http.MethodGet {
			resp["200"] = jsonResponse("the cached entity", map[string]any{"type": "object"})
			resp["404"] = errorResponse("nothing, or a miss, is cached under the key")
		} else {
			resp["204"] = map[string]any{"description": "invalidated on this node"}
		}
	case roleTags:
		query = []any{sizeParam(), queryParam("offset", map[string]any{"type": "string"})}
		resp["200"] = jsonResponse("entities and their tags", ref("TagPage"))
		resp["400"] = errorResponse("invalid size, offset or tag")
		resp["503"] = errorResponse("the datastore is unreachable")
	case roleForeign:
		d.kind = entity.Schemas[collectionKinds[d.pattern[0]]].Foreign[d.pattern[2]]
		d.entityOp(m, roleItem, op, resp, &query)
	case roleCollection, roleItem:
		d.entityOp(m, d.role, op, resp, &query)
	case roleAbsent:
		absentOp(m, d.path, op, resp)
	case roleSchema:
		resp["200"] = jsonResponse("Kong's schema of the entity or plugin: fields with types, defaults and constraints",
			objectSchema(map[string]any{"fields": arrayOf(map[string]any{"type": "object"}),
				"entity_checks": arrayOf(map[string]any{"type": "object"})}, "fields"))
		resp["404"] = errorResponse("no entity or plugin of that name")
	case roleConfig:
		resp["400"] = errorResponse("not a DB-less node, or (POST) an invalid configuration: code 14 with every problem")
		if m == http.MethodGet {
			resp["200"] = jsonResponse("the configuration in Kong's declarative format (YAML)",
				objectSchema(map[string]any{"config": map[string]any{"type": "string"}}, "config"))
		} else {
			op["requestBody"] = map[string]any{"content": map[string]any{
				"application/json": map[string]any{"schema": map[string]any{"type": "object"}},
				"application/x-www-form-urlencoded": map[string]any{"schema": objectSchema(map[string]any{
					"config": map[string]any{"type": "string"}}, "config")},
			}}
			resp["201"] = jsonResponse("the configuration replaced every entity", map[string]any{"type": "object"})
			resp["413"] = errorResponse("body larger than 256 MiB")
		}
	case roleSchemaValidate:
		op["requestBody"] = map[string]any{"content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		resp["200"] = jsonResponse("the body is a valid entity", ref("Error"))
		resp["400"] = errorResponse("schema violation, or an unreadable body")
		resp["404"] = errorResponse("no entity of that name")
		resp["413"] = errorResponse("body larger than 1 MiB")
		resp["415"] = errorResponse("unsupported Content-Type")
	default:
		resp["default"] = errorResponse("undescribed endpoint")
	}
	if len(query) > 0 {
		op["parameters"] = query
	}
	op["responses"] = resp
	return op
}

// entityOp fills op and resp for method m on an entity collection or item.
func (d described) entityOp(m string, r role, op, resp map[string]any, query *[]any) {
	schema := ref(schemaNames[d.kind])
	resp["503"] = errorResponse("the datastore is unreachable")
	if d.nested || r == roleItem {
		resp["404"] = errorResponse("the addressed entity or its parent does not exist")
	}
	switch m {
	case http.MethodGet:
		if r == roleCollection {
			*query = []any{sizeParam(), queryParam("offset", map[string]any{"type": "string"}),
				queryParam("tags", map[string]any{"type": "string",
					"description": "keep entities tagged with every tag of a,b or with any tag of a/b (not both separators)"})}
			resp["200"] = jsonResponse("a page", ref(schemaNames[d.kind]+"Page"))
			resp["400"] = errorResponse("invalid size, offset or tags")
			return
		}
		resp["200"] = jsonResponse("the entity", schema)
		return
	case http.MethodDelete:
		resp["204"] = map[string]any{"description": "deleted, or did not exist"}
		resp["400"] = errorResponse("still referenced (foreign key violation)")
		return
	case http.MethodPost:
		resp["201"] = jsonResponse("created", schema)
	default:
		resp["200"] = jsonResponse("written", schema)
	}
	input := ref(schemaNames[d.kind] + "Input")
	op["requestBody"] = map[string]any{"content": map[string]any{
		"application/json":                  map[string]any{"schema": input},
		"application/x-www-form-urlencoded": map[string]any{"schema": input},
	}}
	resp["400"] = errorResponse("schema, primary key or foreign key violation, or an unreadable body")
	resp["409"] = errorResponse("unique constraint violation")
	resp["413"] = errorResponse("body larger than 1 MiB")
	resp["415"] = errorResponse("unsupported Content-Type")
}

// isAbsent reports whether pattern is the collection or item endpoint of
// one of absentKinds.
func isAbsent(pattern []string) bool {
	for _, a := range absentKinds {
		if slices.Equal(pattern, a.path) || len(pattern) == len(a.path)+1 &&
			slices.Equal(pattern[:len(a.path)], a.path) && pattern[len(a.path)] == "*" {
			return true
		}
	}
	return false
}

// absentOp fills op and resp for method m on an entity this node does not
// have. Operations that can only fail are marked x-sluice-unsupported.
func absentOp(m, path string, op, resp map[string]any) {
	switch {
	case m == http.MethodGet && !strings.Contains(path, "{"):
		resp["200"] = jsonResponse("an empty page: this node has none of these entities", ref("EmptyPage"))
		return
	case m == http.MethodDelete && strings.Count(path, "{") == 1:
		resp["204"] = map[string]any{"description": "did not exist"}
		return
	}
	op["x-sluice-unsupported"] = true
	switch m {
	case http.MethodGet, http.MethodDelete:
		resp["404"] = errorResponse("this node has none of these entities")
	default:
		resp["405"] = errorResponse("operation unsupported (code 12): this node does not have these entities yet")
	}
}

func (d described) tag() string {
	if d.kind != "" {
		return string(d.kind)
	}
	if d.role == roleCacheKeys || d.role == roleCacheItem {
		return "cache"
	}
	if d.role == roleTags {
		return "tags"
	}
	if d.role == roleSchema || d.role == roleSchemaValidate {
		return "schemas"
	}
	return "node"
}

// operationID turns "GET /services/{service}/routes" into
// "get_services_service_routes".
func operationID(m, path string) string {
	r := strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_")
	id := strings.ToLower(m) + r.Replace(strings.TrimSuffix(path, "/"))
	if path == "/" {
		id += "_root"
	}
	return id
}

// components returns the shared schemas: one per entity kind (as answered),
// its input, its page, Kong's error body, and the node documents.
func components() map[string]any {
	schemas := map[string]any{
		"Error": map[string]any{
			"type":        "object",
			"description": `Kong's error body: {code, name, message, fields}, or a bare {message}`,
			"required":    []any{"message"},
			"properties": map[string]any{
				"message": map[string]any{"type": "string"},
				"code":    map[string]any{"type": "integer"},
				"name":    map[string]any{"type": "string"},
				"fields":  map[string]any{"type": "object"},
			},
		},
		"Info": objectSchema(map[string]any{
			"tagline": map[string]any{"type": "string"}, "version": map[string]any{"type": "string"},
			"sluice_version": map[string]any{"type": "string"}, "edition": map[string]any{"type": "string"},
			"hostname": map[string]any{"type": "string"}, "node_id": map[string]any{"type": "string"},
			"plugins": objectSchema(map[string]any{
				"available_on_server": map[string]any{"type": "object"},
				"enabled_in_cluster":  arrayOf(map[string]any{"type": "string"}),
			}, "available_on_server", "enabled_in_cluster"),
			"configuration": map[string]any{"type": "object"},
			"pids":          map[string]any{"type": "object"},
		}, "tagline", "version", "hostname", "node_id", "plugins", "configuration"),
		"Status": objectSchema(map[string]any{
			"database": objectSchema(map[string]any{"reachable": map[string]any{"type": "boolean"}}, "reachable"),
			"memory":   map[string]any{"type": "object"},
			"server": objectSchema(map[string]any{
				"total_requests": map[string]any{"type": "integer"}, "connections_active": map[string]any{"type": "integer"},
				"connections_accepted": map[string]any{"type": "integer"}, "connections_handled": map[string]any{"type": "integer"},
				"connections_reading": map[string]any{"type": "integer"}, "connections_writing": map[string]any{"type": "integer"},
				"connections_waiting": map[string]any{"type": "integer"},
			}, "total_requests", "connections_active", "connections_accepted", "connections_handled",
				"connections_reading", "connections_writing", "connections_waiting"),
		}, "database", "memory", "server"),
	}
	schemas["TagPage"] = objectSchema(map[string]any{
		"data": arrayOf(objectSchema(map[string]any{
			"entity_name": map[string]any{"type": "string"}, "entity_id": map[string]any{"type": "string", "format": "uuid"},
			"tag": map[string]any{"type": "string"},
		}, "entity_name", "entity_id", "tag")),
		"offset": map[string]any{"type": "string"},
		"next":   map[string]any{"type": "string", "nullable": true},
	}, "data", "next")
	schemas["EmptyPage"] = objectSchema(map[string]any{
		"data": map[string]any{"type": "array", "maxItems": 0, "items": map[string]any{"type": "object"}},
		"next": map[string]any{"type": "string", "nullable": true},
	}, "data", "next")
	for kind, name := range schemaNames {
		schemas[name] = entitySchema(kind)
		schemas[name+"Input"] = inputSchema(kind)
		schemas[name+"Page"] = objectSchema(map[string]any{
			"data":   arrayOf(ref(name)),
			"offset": map[string]any{"type": "string"},
			"next":   map[string]any{"type": "string", "nullable": true},
		}, "data", "next")
	}
	return map[string]any{
		"schemas": schemas,
		"securitySchemes": map[string]any{
			"bearer":         map[string]any{"type": "http", "scheme": "bearer"},
			"kongAdminToken": map[string]any{"type": "apiKey", "in": "header", "name": "Kong-Admin-Token"},
		},
	}
}

// entitySchema is kind as answered: every field present, null only where
// Kong allows it.
func entitySchema(kind entity.Kind) map[string]any {
	props := map[string]any{}
	for name, f := range entity.Fields(kind) {
		s := fieldSchema(f.Type)
		if f.Nullable {
			s["nullable"] = true
		}
		if name == "id" {
			s["format"] = "uuid"
		}
		props[name] = s
	}
	return objectSchema(props, slices.Sorted(maps.Keys(props))...)
}

// inputSchema is the body of a write to kind: every field optional and
// nullable (null means the default), plus write-only fields such as a
// service's url.
func inputSchema(kind entity.Kind) map[string]any {
	props := map[string]any{}
	all := maps.Clone(entity.Fields(kind))
	maps.Copy(all, extraFields[kind])
	for name, f := range all {
		s := fieldSchema(f.Type)
		s["nullable"] = true
		if name == "id" {
			s["format"] = "uuid"
		}
		props[name] = s
	}
	return map[string]any{"type": "object", "properties": props}
}

func fieldSchema(t entity.FieldType) map[string]any {
	switch t {
	case entity.TypeInteger:
		return map[string]any{"type": "integer"}
	case entity.TypeBoolean:
		return map[string]any{"type": "boolean"}
	case entity.TypeSet, entity.TypeArray:
		return arrayOf(map[string]any{"type": "string"})
	case entity.TypeHeaders:
		return map[string]any{"type": "object", "additionalProperties": arrayOf(map[string]any{"type": "string"})}
	case entity.TypeForeign:
		return objectSchema(map[string]any{"id": map[string]any{"type": "string", "format": "uuid"}}, "id")
	case entity.TypeRecord:
		return map[string]any{"type": "object"}
	case entity.TypeCIDRPorts:
		return arrayOf(objectSchema(map[string]any{"ip": map[string]any{"type": "string"},
			"port": map[string]any{"type": "integer", "minimum": 0, "maximum": 65535}}))
	}
	return map[string]any{"type": "string"}
}

func objectSchema(props map[string]any, required ...string) map[string]any {
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		req := make([]any, len(required))
		for i, r := range required {
			req[i] = r
		}
		s["required"] = req
	}
	return s
}

func arrayOf(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

func enumSchema(values ...string) map[string]any {
	e := make([]any, len(values))
	for i, v := range values {
		e[i] = v
	}
	return map[string]any{"type": "string", "enum": e}
}

func ref(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

func queryParam(name string, schema any) map[string]any {
	return map[string]any{"name": name, "in": "query", "schema": schema}
}

func sizeParam() map[string]any {
	return queryParam("size", map[string]any{"type": "integer", "minimum": 1, "maximum": maxPageSize})
}

func jsonResponse(desc string, schema any) map[string]any {
	return map[string]any{"description": desc,
		"content": map[string]any{"application/json": map[string]any{"schema": schema}}}
}

func errorResponse(desc string) map[string]any { return jsonResponse(desc, ref("Error")) }
