package plugins

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// A config struct declares its schema once, in its fields: the Go type
// gives Kong's type, the `json` tag the name, the value in the plugin's
// DefaultConfig the default, and the `kong` tag the constraints, a
// comma-separated list of:
//
//	required        the field must be set (non-null, non-empty)
//	one_of=a|b|c    the value (each element of an array) is one of these
//	between=lo|hi   a number within [lo, hi]
//	gt=n            a number greater than n
//	len_min=n       a string or array of at least n elements
//	set             an array of distinct values (Kong's "set")
//
// DecodeConfig checks the constraints and RecordSchema publishes them, so
// validation and /schemas cannot disagree.

// Describer is implemented by plugins whose configuration is a struct
// with `kong` tags. DefaultConfig returns a pointer to a new config holding
// every default; the caller owns it.
type Describer interface {
	DefaultConfig() any
}

// EntityChecker is implemented by plugins whose config has constraints
// across fields (Kong's entity_checks, published by /schemas/plugins).
// The plugin's Configure enforces them.
type EntityChecker interface {
	EntityChecks() []any
}

// constraints is a parsed `kong` tag.
type constraints struct {
	required, set bool
	oneOf         []string
	between       *[2]float64
	gt            *float64
	lenMin        int
}

func parseConstraints(tag string) constraints {
	var c constraints
	for part := range strings.SplitSeq(tag, ",") {
		key, val, _ := strings.Cut(part, "=")
		switch key {
		case "required":
			c.required = true
		case "set":
			c.set = true
		case "one_of":
			c.oneOf = strings.Split(val, "|")
		case "between":
			lo, hi, _ := strings.Cut(val, "|")
			c.between = &[2]float64{mustFloat(lo), mustFloat(hi)}
		case "gt":
			g := mustFloat(val)
			c.gt = &g
		case "len_min":
			c.lenMin = int(mustFloat(val))
		case "":
		default:
			panic("plugins: unknown kong tag " + key)
		}
	}
	return c
}

func mustFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic("plugins: bad number in kong tag: " + s)
	}
	return f
}

// configField is one exported, JSON-named field of a config struct.
type configField struct {
	name  string
	index int
	c     constraints
}

func configFields(t reflect.Type) []configField {
	var out []configField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() || f.Anonymous {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, configField{name: name, index: i, c: parseConstraints(f.Tag.Get("kong"))})
	}
	return out
}

// checkConstraints checks the `kong` tags of the struct v points to, and
// of its nested records, and adds Kong's message for each offending field
// to fe, a nested record's fields as "record.field".
func checkConstraints(v reflect.Value, fe FieldErrors) {
	v = reflect.Indirect(v)
	for _, f := range configFields(v.Type()) {
		fv := v.Field(f.index)
		if fv.Kind() == reflect.Struct {
			sub := FieldErrors{}
			checkConstraints(fv, sub)
			for k, msg := range sub {
				fe[f.name+"."+k] = msg
			}
			continue
		}
		if msg := f.c.check(fv); msg != "" {
			fe[f.name] = msg
		}
	}
}

func (c constraints) check(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			if c.required {
				return "required field missing"
			}
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() < c.lenMin {
			return fmt.Sprintf("length must be at least %d", c.lenMin)
		}
		if c.required && v.IsNil() {
			return "required field missing"
		}
		for i := range v.Len() {
			if msg := c.checkScalar(v.Index(i)); msg != "" {
				return msg
			}
		}
		return ""
	case reflect.String:
		if v.Len() < c.lenMin {
			return fmt.Sprintf("length must be at least %d", c.lenMin)
		}
	}
	return c.checkScalar(v)
}

func (c constraints) checkScalar(v reflect.Value) string {
	if c.oneOf != nil && !slices.Contains(c.oneOf, fmt.Sprint(v.Interface())) {
		return "expected one of: " + strings.Join(c.oneOf, ", ")
	}
	var n float64
	switch v.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		n = float64(v.Int())
	case reflect.Float64, reflect.Float32:
		n = v.Float()
	default:
		return ""
	}
	if c.between != nil && (n < c.between[0] || n > c.between[1]) {
		return fmt.Sprintf("value should be between %s and %s", num(c.between[0]), num(c.between[1]))
	}
	if c.gt != nil && n <= *c.gt {
		return "value must be greater than " + num(*c.gt)
	}
	return ""
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// RecordSchema returns Kong's schema of a record whose fields are those of
// the config struct def points to, with def's values as defaults:
// {"type": "record", "required": true, "fields": [{name: {...}}, ...]}.
func RecordSchema(def any) map[string]any {
	v := reflect.Indirect(reflect.ValueOf(def))
	var fields []any
	for _, f := range configFields(v.Type()) {
		fields = append(fields, map[string]any{f.name: fieldSchema(v.Field(f.index), f.c)})
	}
	return map[string]any{"type": "record", "required": true, "fields": fields}
}

// fieldSchema describes one field, whose default is v.
func fieldSchema(v reflect.Value, c constraints) map[string]any {
	t := v.Type()
	hasDefault := true
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
		if hasDefault = !v.IsNil(); hasDefault {
			v = v.Elem()
		}
	}
	if t.Kind() == reflect.Slice && v.IsValid() && v.IsNil() {
		hasDefault = false
	}
	s := map[string]any{"type": kongType(t)}
	if t.Kind() == reflect.Slice {
		el := map[string]any{"type": kongType(t.Elem())}
		if c.oneOf != nil {
			el["one_of"] = oneOfValues(t.Elem(), c.oneOf)
		}
		s["elements"] = el
		if c.set {
			s["type"] = "set"
		}
	} else if c.oneOf != nil {
		s["one_of"] = oneOfValues(t, c.oneOf)
	}
	if t.Kind() == reflect.Map {
		s["keys"] = map[string]any{"type": kongType(t.Key())}
		s["values"] = map[string]any{"type": kongType(t.Elem())}
	}
	if t.Kind() == reflect.Struct {
		// A nested record is required, its defaults filled in, as Kong
		// makes every record of an entity.
		s = RecordSchema(v.Addr().Interface())
	}
	if c.required {
		s["required"] = true
	}
	if c.between != nil {
		s["between"] = []float64{c.between[0], c.between[1]}
	}
	if c.gt != nil {
		s["gt"] = *c.gt
	}
	if c.lenMin > 0 {
		s["len_min"] = c.lenMin
	}
	if t.Kind() == reflect.Map && v.IsValid() && v.IsNil() {
		hasDefault = false
	}
	if hasDefault && t.Kind() != reflect.Struct {
		s["default"] = v.Interface()
	}
	return s
}

// oneOfValues returns a one_of list as values of t's Kong type: numbers
// for a number field ([-1, 1]), strings otherwise.
func oneOfValues(t reflect.Type, oneOf []string) any {
	if k := kongType(t); k != "integer" && k != "number" {
		return oneOf
	}
	out := make([]float64, len(oneOf))
	for i, v := range oneOf {
		out[i] = mustFloat(v)
	}
	return out
}

func kongType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map:
		return "map"
	case reflect.Struct:
		return "record"
	case reflect.Pointer:
		return kongType(t.Elem())
	}
	return "value"
}
