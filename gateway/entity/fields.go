package entity

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// FieldType is the JSON type of an entity field, as Kong's schema types.
type FieldType uint8

// The field types.
const (
	// TypeString is a JSON string.
	TypeString FieldType = iota + 1
	// TypeInteger is a JSON number without a fraction.
	TypeInteger
	// TypeBoolean is true or false.
	TypeBoolean
	// TypeSet is an array of distinct strings.
	TypeSet
	// TypeArray is an array of strings.
	TypeArray
	// TypeHeaders is an object whose values are arrays of strings.
	TypeHeaders
	// TypeForeign is a reference, {"id": "<uuid>"}.
	TypeForeign
	// TypeRecord is an object whose schema is not the entity's (a plugin's
	// config).
	TypeRecord
	// TypeCIDRPorts is a set of {"ip": ip or CIDR, "port": integer}
	// records (a stream route's sources and destinations).
	TypeCIDRPorts
)

// Field describes one field of an entity: its type and the constraints
// that Validate checks and the Admin API's /schemas publishes, so that the
// two cannot disagree. Defaults are Default's values.
type Field struct {
	Name string
	Type FieldType
	// Nullable fields accept JSON null; for the others null means "use the
	// default".
	Nullable bool
	// Required fields must have a value (a non-empty one for sets and
	// arrays) once defaults are applied.
	Required bool
	// Auto fields are set by the node when absent (ids, timestamps,
	// generated keys).
	Auto bool
	// OneOf lists the allowed values (of each element, for sets and
	// arrays); nil allows any.
	OneOf []any
	// Between is the allowed range of an integer; nil allows any.
	Between *[2]int
	// StartsWith is a prefix a string must have.
	StartsWith string
}

func between(lo, hi int) *[2]int { return &[2]int{lo, hi} }

var (
	idField        = Field{Name: "id", Type: TypeString, Auto: true}
	createdAtField = Field{Name: "created_at", Type: TypeInteger, Auto: true}
	updatedAtField = Field{Name: "updated_at", Type: TypeInteger, Auto: true}
	tagsField      = Field{Name: "tags", Type: TypeSet, Nullable: true}
	timeout        = between(1, 1<<31-2)
)

// fieldDefs holds the fields of every kind in Kong's order. It is never
// modified.
var fieldDefs = map[Kind][]Field{
	KindCertificate: {
		idField, createdAtField, updatedAtField,
		{Name: "cert", Type: TypeString, Required: true},
		{Name: "key", Type: TypeString, Required: true},
		{Name: "cert_alt", Type: TypeString, Nullable: true},
		{Name: "key_alt", Type: TypeString, Nullable: true},
		tagsField,
		// Not in Kong's schema: Kong keeps snis as entities of their own
		// and shows them with their certificate.
		{Name: "snis", Type: TypeSet, Nullable: true},
	},
	KindService: {
		idField, createdAtField, updatedAtField,
		{Name: "name", Type: TypeString, Nullable: true},
		{Name: "retries", Type: TypeInteger, Between: between(0, 32767)},
		{Name: "protocol", Type: TypeString, Required: true, OneOf: []any{"http", "https"}},
		{Name: "host", Type: TypeString, Required: true},
		{Name: "port", Type: TypeInteger, Required: true, Between: between(0, 65535)},
		{Name: "path", Type: TypeString, Nullable: true, StartsWith: "/"},
		{Name: "connect_timeout", Type: TypeInteger, Between: timeout},
		{Name: "write_timeout", Type: TypeInteger, Between: timeout},
		{Name: "read_timeout", Type: TypeInteger, Between: timeout},
		tagsField,
		{Name: "client_certificate", Type: TypeForeign, Nullable: true},
		{Name: "enabled", Type: TypeBoolean, Required: true},
	},
	KindRoute: {
		idField, createdAtField, updatedAtField,
		{Name: "name", Type: TypeString, Nullable: true},
		{Name: "protocols", Type: TypeSet, Required: true, OneOf: stringsAny(RouteProtocols)},
		{Name: "methods", Type: TypeSet, Nullable: true},
		{Name: "hosts", Type: TypeArray, Nullable: true},
		{Name: "paths", Type: TypeArray, Nullable: true},
		{Name: "headers", Type: TypeHeaders, Nullable: true},
		{Name: "https_redirect_status_code", Type: TypeInteger, Required: true,
			OneOf: []any{426, 301, 302, 307, 308}},
		{Name: "regex_priority", Type: TypeInteger, Between: between(-(1 << 31), 1<<31-1)},
		{Name: "strip_path", Type: TypeBoolean, Required: true},
		{Name: "path_handling", Type: TypeString, OneOf: []any{"v0", "v1"}},
		{Name: "preserve_host", Type: TypeBoolean, Required: true},
		{Name: "request_buffering", Type: TypeBoolean, Required: true},
		{Name: "response_buffering", Type: TypeBoolean, Required: true},
		{Name: "snis", Type: TypeSet, Nullable: true},
		{Name: "sources", Type: TypeCIDRPorts, Nullable: true},
		{Name: "destinations", Type: TypeCIDRPorts, Nullable: true},
		tagsField,
		{Name: "service", Type: TypeForeign, Nullable: true},
	},
	KindConsumer: {
		idField, createdAtField, updatedAtField,
		{Name: "username", Type: TypeString, Nullable: true},
		{Name: "custom_id", Type: TypeString, Nullable: true},
		tagsField,
	},
	KindPlugin: {
		idField,
		{Name: "name", Type: TypeString, Required: true},
		{Name: "instance_name", Type: TypeString, Nullable: true},
		createdAtField, updatedAtField,
		{Name: "route", Type: TypeForeign, Nullable: true},
		{Name: "service", Type: TypeForeign, Nullable: true},
		{Name: "consumer", Type: TypeForeign, Nullable: true},
		{Name: "config", Type: TypeRecord},
		{Name: "protocols", Type: TypeSet, Required: true, OneOf: stringsAny(PluginProtocols)},
		{Name: "enabled", Type: TypeBoolean},
		tagsField,
	},
	KindKeyAuth: {
		idField, createdAtField,
		{Name: "consumer", Type: TypeForeign, Nullable: true, Required: true},
		{Name: "key", Type: TypeString, Required: true, Auto: true},
		{Name: "ttl", Type: TypeInteger, Nullable: true, Between: between(0, 100000000)},
		tagsField,
	},
	KindBasicAuth: {
		idField, createdAtField,
		{Name: "consumer", Type: TypeForeign, Nullable: true, Required: true},
		{Name: "username", Type: TypeString, Required: true},
		{Name: "password", Type: TypeString, Required: true},
		tagsField,
	},
	KindJWT: {
		idField, createdAtField,
		{Name: "consumer", Type: TypeForeign, Nullable: true, Required: true},
		{Name: "key", Type: TypeString, Auto: true},
		{Name: "secret", Type: TypeString, Auto: true},
		{Name: "rsa_public_key", Type: TypeString, Nullable: true},
		{Name: "algorithm", Type: TypeString, OneOf: stringsAny(JWTAlgorithms)},
		tagsField,
	},
}

// JWTAlgorithms are the values of a jwt_secrets algorithm, Kong's list.
// Callers must not modify it.
var JWTAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// fields indexes fieldDefs by name.
var fields = func() map[Kind]map[string]Field {
	out := make(map[Kind]map[string]Field, len(fieldDefs))
	for k, defs := range fieldDefs {
		out[k] = make(map[string]Field, len(defs))
		for _, f := range defs {
			out[k][f.Name] = f
		}
	}
	return out
}()

// Fields returns the fields of kind k by JSON name, or nil for an unknown
// kind. The map is shared: callers must not modify it.
func Fields(k Kind) map[string]Field { return fields[k] }

// FieldList returns the fields of kind k in Kong's order, or nil for an
// unknown kind. The slice is shared: callers must not modify it.
func FieldList(k Kind) []Field { return fieldDefs[k] }

// checkFields checks e's values against its kind's Field constraints.
func checkFields(e Entity, errs FieldErrors) {
	data, err := json.Marshal(e)
	if err != nil {
		errs["@entity"] = "cannot encode: " + err.Error()
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		errs["@entity"] = "cannot decode: " + err.Error()
		return
	}
	for _, f := range fieldDefs[e.EntityKind()] {
		if msg := f.check(doc[f.Name]); msg != "" {
			errs[f.Name] = msg
		}
	}
}

// check returns why v (decoded from JSON) breaks f's constraints, or "".
func (f Field) check(v any) string {
	if list, ok := v.([]any); ok {
		if f.Required && len(list) == 0 {
			return "required field missing"
		}
		for _, el := range list {
			if msg := f.checkOne(el); msg != "" {
				return msg
			}
		}
		return ""
	}
	if v == nil {
		if f.Required {
			return "required field missing"
		}
		return ""
	}
	if s, ok := v.(string); ok && f.Required && s == "" && !f.Auto {
		return "required field missing"
	}
	return f.checkOne(v)
}

func (f Field) checkOne(v any) string {
	if f.OneOf != nil && !slices.ContainsFunc(f.OneOf, func(a any) bool { return fmt.Sprint(a) == fmt.Sprint(v) }) {
		names := make([]string, len(f.OneOf))
		for i, a := range f.OneOf {
			names[i] = fmt.Sprint(a)
		}
		return "expected one of: " + strings.Join(names, ", ")
	}
	if n, ok := v.(float64); ok && f.Between != nil && (n < float64(f.Between[0]) || n > float64(f.Between[1])) {
		return fmt.Sprintf("value should be between %d and %d", f.Between[0], f.Between[1])
	}
	if s, ok := v.(string); ok && f.StartsWith != "" && !strings.HasPrefix(s, f.StartsWith) {
		return "should start with: " + f.StartsWith
	}
	return ""
}
