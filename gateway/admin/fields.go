package admin

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// extraFields are the write-only fields accepted besides the entity's own.
var extraFields = map[entity.Kind]map[string]entity.Field{
	entity.KindService: {"url": {Type: entity.TypeString}},
}

// kongOnlyFields are Kong fields Sluice does not implement. Clients that
// send them unset (null or empty) are accepted and the field is dropped;
// a value is refused.
var kongOnlyFields = map[entity.Kind][]string{
	entity.KindService: {"tls_verify", "tls_verify_depth", "ca_certificates"},
}

// normalize checks body's fields against kind's field types and returns the
// body with every value in its canonical form: integers as int64, sets and
// arrays as []any of strings, headers as map[string]any of []any. form says
// the values are form strings to convert first. It returns a schema
// violation naming each bad field.
func normalize(kind entity.Kind, body map[string]any, form bool) (map[string]any, error) {
	out := make(map[string]any, len(body))
	bad := map[string]any{}
	for name, v := range body {
		f, ok := entity.Fields(kind)[name]
		if !ok {
			f, ok = extraFields[kind][name]
		}
		if !ok {
			if isKongOnly(kind, name) && isUnset(v) {
				continue
			}
			bad[name] = "unknown field"
			continue
		}
		if form {
			v = fromForm(f.Type, v)
		}
		nv, msg := normalizeValue(f.Type, v)
		if msg != nil {
			bad[name] = msg
			continue
		}
		out[name] = nv
	}
	if len(bad) > 0 {
		return nil, schemaViolation(bad)
	}
	return out, nil
}

func isKongOnly(kind entity.Kind, name string) bool {
	for _, n := range kongOnlyFields[kind] {
		if n == name {
			return true
		}
	}
	return false
}

func isUnset(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	}
	return false
}

// normalizeValue returns v in canonical form, or a message (string or
// nested map) saying what is wrong. nil is always accepted here: whether a
// field may be null is decided when the entity is built.
func normalizeValue(t entity.FieldType, v any) (any, any) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case entity.TypeString:
		if _, ok := v.(string); !ok {
			return nil, "expected a string"
		}
	case entity.TypeInteger:
		return normalizeInteger(v)
	case entity.TypeBoolean:
		if _, ok := v.(bool); !ok {
			return nil, "expected a boolean"
		}
	case entity.TypeSet:
		return normalizeStrings(v, "expected a set")
	case entity.TypeArray:
		return normalizeStrings(v, "expected an array")
	case entity.TypeHeaders:
		return normalizeHeaders(v)
	case entity.TypeForeign:
		return normalizeForeign(v)
	case entity.TypeRecord:
		if _, ok := v.(map[string]any); !ok {
			return nil, "expected a record"
		}
	case entity.TypeCIDRPorts:
		return normalizeCIDRPorts(v)
	}
	return v, nil
}

// normalizeCIDRPorts accepts a set of {"ip": string, "port": integer}
// records; the message of a bad element is at its index, as Kong's.
func normalizeCIDRPorts(v any) (any, any) {
	arr, ok := v.([]any)
	if !ok {
		return nil, "expected a set"
	}
	out := make([]any, len(arr))
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, elementError(i, "expected a record")
		}
		rec := map[string]any{}
		for k, fv := range m {
			var nv, msg any
			switch k {
			case "ip":
				nv, msg = normalizeValue(entity.TypeString, fv)
			case "port":
				nv, msg = normalizeValue(entity.TypeInteger, fv)
			default:
				msg = "unknown field"
			}
			if msg != nil {
				return nil, elementError(i, map[string]any{k: msg})
			}
			rec[k] = nv
		}
		out[i] = rec
	}
	return out, nil
}

// elementError places msg at index i of an array, the shape of Kong's
// errors about one element of a set or array.
func elementError(i int, msg any) []any {
	out := make([]any, i+1)
	out[i] = msg
	return out
}

// normalizeInteger accepts a JSON number whose exact value is an integer
// within ±2^53: 5, 5.0 and 5e2, but not 5.5 nor 1e-400, which float
// parsing would round to 0.
func normalizeInteger(v any) (any, any) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, "expected an integer"
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, _, err := big.ParseFloat(string(n), 10, 256, big.ToNearestEven)
	if err != nil || !f.IsInt() {
		return nil, "expected an integer"
	}
	i, acc := f.Int64()
	if acc != big.Exact || i > 1<<53 || i < -(1<<53) {
		return nil, "expected an integer"
	}
	return i, nil
}

func normalizeStrings(v any, msg string) (any, any) {
	arr, ok := v.([]any)
	if !ok {
		return nil, msg
	}
	for _, e := range arr {
		if _, ok := e.(string); !ok {
			return nil, "expected a string"
		}
	}
	return arr, nil
}

func normalizeHeaders(v any) (any, any) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, "expected a map"
	}
	out := make(map[string]any, len(m))
	for k, hv := range m {
		if s, ok := hv.(string); ok {
			hv = []any{s}
		}
		nv, msg := normalizeStrings(hv, "expected an array")
		if msg != nil {
			return nil, map[string]any{k: msg}
		}
		out[k] = nv
	}
	return out, nil
}

// normalizeForeign accepts a reference as Kong does: {"id": ...}, the
// referenced entity's endpoint key ({"name": ...} for services and routes,
// {"username": ...} for consumers), or the whole entity as a client read
// it back, whose id is used and whose other fields are ignored. The result
// is {"id": ...}, {key: ...} (resolved to an id by resolveRefs) or nil
// for a null reference.
func normalizeForeign(v any) (any, any) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, "expected a record"
	}
	switch id := m["id"].(type) {
	case string:
		return map[string]any{"id": id}, nil
	case nil:
	default:
		return nil, map[string]any{"id": "expected a string"}
	}
	for _, key := range refKeys {
		switch kv := m[key].(type) {
		case string:
			if kv != "" {
				return map[string]any{key: kv}, nil
			}
		case nil:
		default:
			return nil, map[string]any{key: "expected a string"}
		}
	}
	if _, ok := m["id"]; ok || len(m) == 0 {
		return nil, nil // {"id": null} is a null reference
	}
	return nil, map[string]any{"id": "required field missing"}
}

// refKeys are the endpoint keys a reference may name its entity by.
var refKeys = []string{"name", "username"}

// fromForm converts form strings to the JSON types field type t expects.
// An empty value means null. Values it cannot convert are left for
// normalizeValue to reject.
func fromForm(t entity.FieldType, v any) any {
	if s, ok := v.(string); ok && s == "" {
		return nil
	}
	switch t {
	case entity.TypeInteger:
		if s, ok := v.(string); ok {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return json.Number(s)
			}
		}
	case entity.TypeBoolean:
		if s, ok := v.(string); ok {
			if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
				return b
			}
		}
	case entity.TypeSet, entity.TypeArray:
		if s, ok := v.(string); ok {
			return []any{s}
		}
	case entity.TypeForeign:
		if m, ok := v.(map[string]any); ok && allEmpty(m) {
			return nil // service.id= (or service.name=) means null
		}
	case entity.TypeRecord:
		return inferForm(v)
	case entity.TypeCIDRPorts:
		// destinations[1].ip=10.0.0.1&destinations[1].port=80
		if list, ok := v.([]any); ok {
			for _, el := range list {
				if m, ok := el.(map[string]any); ok {
					for k, fv := range m {
						m[k] = fromForm(map[string]entity.FieldType{"ip": entity.TypeString, "port": entity.TypeInteger}[k], fv)
					}
				}
			}
		}
	}
	return v
}

func allEmpty(m map[string]any) bool {
	for _, v := range m {
		if v != "" {
			return false
		}
	}
	return true
}

// inferForm converts the strings of a form record whose schema is unknown
// here (a plugin's config): "true" and "false" become booleans, numbers
// become numbers and empty strings become null.
func inferForm(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			v[k] = inferForm(c)
		}
		return v
	case []any:
		for i, c := range v {
			v[i] = inferForm(c)
		}
		return v
	case string:
		switch {
		case v == "":
			return nil
		case v == "true":
			return true
		case v == "false":
			return false
		}
		if (v[0] == '-' || v[0] >= '0' && v[0] <= '9') && json.Valid([]byte(v)) && strings.TrimSpace(v) == v {
			return json.Number(v)
		}
	}
	return v
}
