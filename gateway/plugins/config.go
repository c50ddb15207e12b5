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

// recordField returns the nested record (struct field) whose JSON name is
// name in the struct dst points to, addressable, or false when that field
// is not a record.
func recordField(dst any, name string) (any, bool) {
	v := reflect.Indirect(reflect.ValueOf(dst))
	for _, f := range configFields(v.Type()) {
		if f.name == name && v.Field(f.index).Kind() == reflect.Struct {
			return v.Field(f.index).Addr().Interface(), true
		}
	}
	return nil, false
}

// decodeRecord decodes raw into the nested record rec (which holds its
// defaults) as DecodeConfig does, and adds its problems to fe as
// "name.field". A null record is missing: Kong's records are required.
func decodeRecord(name string, raw json.RawMessage, rec any, fe FieldErrors) {
	if string(raw) == "null" {
		fe[name] = "required field missing"
		return
	}
	var sub FieldErrors
	if err := DecodeConfig(raw, rec); err != nil && !errors.As(err, &sub) {
		fe[name] = err.Error()
		return
	}
	for k, msg := range sub {
		if k == "@entity" {
			fe[name] = msg
			continue
		}
		fe[name+"."+k] = msg
	}
}
