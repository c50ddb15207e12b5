package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// errUnauthorized is the answer to a request without the admin token.
var errUnauthorized = &apiError{status: http.StatusUnauthorized, body: message{"Unauthorized"}}

// RequireToken returns next guarded by token (the admin_token key): every
// request must carry "Kong-Admin-Token: <token>" or "Authorization: Bearer
// <token>", else it is answered 401 {"message":"Unauthorized"}. The
// comparison takes constant time. An empty token returns next unguarded.
func RequireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokenMatches(r, want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice admin"`)
			writeJSON(w, errUnauthorized.status, errUnauthorized.body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenMatches reports whether r carries want in Kong-Admin-Token or as a
// bearer token.
func tokenMatches(r *http.Request, want []byte) bool {
	ok := false
	if got := r.Header.Get("Kong-Admin-Token"); got != "" {
		ok = equal([]byte(got), want) || ok
	}
	if scheme, got, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Bearer") {
		ok = equal([]byte(strings.TrimSpace(got)), want) || ok
	}
	return ok
}

// equal compares the SHA-256 digests of got and want, so the time taken
// reveals neither the token nor its length.
func equal(got, want []byte) bool {
	g, w := sha256.Sum256(got), sha256.Sum256(want)
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
