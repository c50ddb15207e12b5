package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Kong's error codes (K@2.8.0:kong/db/errors.lua).
const (
	codeSchemaViolation  = 2
	codePrimaryKey       = 3
	codeForeignKey       = 4
	codeUniqueViolation  = 5
	codeInvalidOffset    = 7
	codeInvalidSize      = 9
	codeOperationUnsuppd = 12
)

// apiError is an error answered to the client: an HTTP status and a body,
// either Kong's {code, name, message, fields} or a bare {message}.
type apiError struct {
	status int
	body   any
	// cause, when set, is logged: the client sees a generic message.
	cause error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.cause.Error()
	}
	return fmt.Sprintf("admin: status %d", e.status)
}

// kongError is Kong's error body.
type kongError struct {
	Code    int            `json:"code"`
	Name    string         `json:"name"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// message is the bare {"message": "..."} body.
type message struct {
	Message string `json:"message"`
}

var (
	errNotFound         = &apiError{status: http.StatusNotFound, body: message{"Not found"}}
	errMethodNotAllowed = &apiError{status: http.StatusMethodNotAllowed, body: message{"Method not allowed"}}
	errBadJSON          = &apiError{status: http.StatusBadRequest, body: message{"Cannot parse JSON body"}}
	errTooLarge         = &apiError{status: http.StatusRequestEntityTooLarge, body: message{"Request body too large"}}
	errUnsupportedType  = &apiError{status: http.StatusUnsupportedMediaType, body: message{"Unsupported Content-Type"}}
)

// unexpected returns the 500 answer for cause, which is logged.
func unexpected(cause error) *apiError {
	return &apiError{status: http.StatusInternalServerError,
		body: message{"An unexpected error occurred"}, cause: cause}
}

// schemaViolation returns Kong's code 2 error for fields, which maps a field
// to a message (string), to nested fields (map[string]any) or, for
// "@entity", to a list of messages.
func schemaViolation(fields map[string]any) *apiError {
	var parts []string
	collectViolations("", fields, &parts)
	slices.Sort(parts)
	msg := "schema violation (" + strings.Join(parts, "; ") + ")"
	if len(parts) > 1 {
		msg = fmt.Sprintf("%d schema violations (%s)", len(parts), strings.Join(parts, "; "))
	}
	return &apiError{status: http.StatusBadRequest,
		body: kongError{Code: codeSchemaViolation, Name: "schema violation", Message: msg, Fields: fields}}
}

func collectViolations(prefix string, fields map[string]any, parts *[]string) {
	for name, v := range fields {
		switch v := v.(type) {
		case map[string]any:
			collectViolations(prefix+name+".", v, parts)
		case []string:
			*parts = append(*parts, v...)
		default:
			*parts = append(*parts, fmt.Sprintf("%s%s: %v", prefix, name, v))
		}
	}
}

func invalidSize(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest,
		body: kongError{Code: codeInvalidSize, Name: "invalid size", Message: msg}}
}

// storeError maps a datastore error to the client's answer. e is the
// entity being written, if any, for unique violation details.
func storeError(err error, e entity.Entity) *apiError {
	var (
		ae   *apiError
		uniq *store.UniqueError
		fk   *store.ForeignKeyError
		ref  *store.ReferencedError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &uniq):
		return uniqueError(uniq, e)
	case errors.As(err, &fk):
		return &apiError{status: http.StatusBadRequest, body: kongError{Code: codeForeignKey,
			Name: "foreign key violation", Message: fk.Error(),
			Fields: map[string]any{fk.Field: map[string]any{"id": fk.ID}}}}
	case errors.As(err, &ref):
		return &apiError{status: http.StatusBadRequest, body: kongError{Code: codeForeignKey,
			Name: "foreign key violation", Message: ref.Error(),
			Fields: map[string]any{"@referenced_by": string(ref.Referrer)}}}
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable,
			body: message{"The database is unreachable; try again later"}, cause: err}
	}
	return unexpected(err)
}

func uniqueError(u *store.UniqueError, e entity.Entity) *apiError {
	if u.Field == "id" {
		return &apiError{status: http.StatusBadRequest, body: kongError{Code: codePrimaryKey,
			Name:    "primary key violation",
			Message: fmt.Sprintf("primary key violation on key '{id=%q}'", u.Value),
			Fields:  map[string]any{"id": u.Value}}}
	}
	fields := map[string]any{u.Field: u.Value}
	desc := fmt.Sprintf("{%s=%q}", u.Field, u.Value)
	if p, ok := e.(*entity.Plugin); ok && u.Field == "cache_key" {
		fields = map[string]any{"name": p.Name, "route": refField(p.Route),
			"service": refField(p.Service), "consumer": refField(p.Consumer)}
		desc = fmt.Sprintf("{consumer=%s,name=%q,route=%s,service=%s}",
			refDesc(p.Consumer), p.Name, refDesc(p.Route), refDesc(p.Service))
	}
	return &apiError{status: http.StatusConflict, body: kongError{Code: codeUniqueViolation,
		Name: "unique constraint violation", Message: "UNIQUE violation detected on '" + desc + "'",
		Fields: fields}}
}

func refField(r *entity.Ref) any {
	if r == nil {
		return nil
	}
	return map[string]any{"id": r.ID}
}

func refDesc(r *entity.Ref) string {
	if r == nil {
		return "null"
	}
	return fmt.Sprintf("{id=%q}", r.ID)
}
