package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// absentKinds are Kong entities this node does not have yet. Their
// endpoints answer as Kong would with none of them configured, so that
// clients that walk every collection (decK's dump and sync) work on a
// configuration that does not use them: collections are empty pages,
// items are not found, deletes succeed and writes are refused with Kong's
// "operation unsupported" (code 12, 405).
var absentKinds = []struct {
	path   []string // the collection's path; "*" is a parent
	entity string   // Kong's entity name, for the error message
}{
	{[]string{"upstreams"}, "upstreams"},
	{[]string{"upstreams", "*", "targets"}, "targets"},
	{[]string{"certificates", "*", "snis"}, "snis"},
	{[]string{"snis"}, "snis"},
	{[]string{"ca_certificates"}, "ca_certificates"},
	{[]string{"vaults"}, "vaults"},
	{[]string{"keys"}, "keys"},
	{[]string{"key-sets"}, "key_sets"},
	{[]string{"key-sets", "*", "keys"}, "keys"},
}

// absentEndpoints returns the endpoints of absentKinds.
func absentEndpoints() []endpoint {
	var eps []endpoint
	for _, a := range absentKinds {
		refuse := func(w http.ResponseWriter, r *http.Request, _ []string) error {
			return &apiError{status: http.StatusMethodNotAllowed, body: kongError{Code: codeOperationUnsuppd,
				Name: "operation unsupported",
				Message: fmt.Sprintf("%s are not supported by this node yet (/%s)", a.entity,
					strings.Join(a.path, "/"))}}
		}
		list := func(w http.ResponseWriter, r *http.Request, args []string) error {
			if len(args) > 0 {
				return errNotFound // the parent cannot exist
			}
			writeJSON(w, http.StatusOK, page{Data: []json.RawMessage{}})
			return nil
		}
		item := append(append([]string(nil), a.path...), "*")
		eps = append(eps,
			endpoint{pattern: a.path, methods: map[string]endpointFunc{
				http.MethodGet: list, http.MethodPost: refuse}},
			endpoint{pattern: item, methods: map[string]endpointFunc{
				http.MethodGet: func(http.ResponseWriter, *http.Request, []string) error { return errNotFound },
				http.MethodDelete: func(w http.ResponseWriter, _ *http.Request, _ []string) error {
					w.WriteHeader(http.StatusNoContent)
					return nil
				},
				http.MethodPut: refuse, http.MethodPatch: refuse}})
	}
	return eps
}
