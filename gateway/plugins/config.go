package plugins

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

// jsonFields returns the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	return names
}

// setFields returns the JSON names of the fields of the struct dst points
// to whose `kong` tag says "set".
func setFields(dst any) map[string]bool {
	sets := map[string]bool{}
	for _, f := range configFields(reflect.Indirect(reflect.ValueOf(dst)).Type()) {
		if f.c.set {
			sets[f.name] = true
		}
	}
	return sets
}

// fieldDoc returns the one-field document {name: raw}, so that a field is
// decoded on its own and its type error is attributed to it.
func fieldDoc(name string, raw json.RawMessage) []byte {
	key, _ := json.Marshal(name)
	doc := make([]byte, 0, len(key)+len(raw)+3)
	doc = append(doc, '{')
	doc = append(doc, key...)
	doc = append(doc, ':')
	doc = append(doc, raw...)
	return append(doc, '}')
}

// typeMessage turns a decoding error into Kong's field message.
func typeMessage(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return "invalid value"
	}
	switch k := kongType(te.Type); k {
	case "integer", "array":
		return "expected an " + k
	case "map", "record":
		return "expected a record"
	default:
		return "expected a " + k
	}
}
