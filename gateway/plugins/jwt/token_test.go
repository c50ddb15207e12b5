package jwt

import (
	"slices"
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	seg := func(s string) string { return b64([]byte(s)) }
	tests := []struct {
		name, token string
		err         error
		alg         string
	}{
		{"valid", seg(`{"alg":"HS256"}`) + "." + seg(`{"iss":"k"}`) + "." + seg("sig"), nil, "HS256"},
		{"padded segments", seg(`{"alg":"HS256"}`) + "==." + seg(`{"a":1}`) + "." + seg("sig"), nil, "HS256"},
		{"empty signature", seg(`{"alg":"HS256"}`) + "." + seg(`{}`) + ".", nil, "HS256"},
		{"claims an array", seg(`{"alg":"HS256"}`) + "." + seg(`[1]`) + ".", nil, "HS256"},
		{"one part", seg(`{"alg":"HS256"}`), errInvalidJSON, ""},
		{"two parts", seg(`{"alg":"HS256"}`) + "." + seg(`{}`), errInvalidJSON, ""},
		{"header not base64", "!!." + seg(`{}`) + ".", errInvalidJSON, ""},
		{"header not JSON", seg(`alg`) + "." + seg(`{}`) + ".", errInvalidJSON, ""},
		{"header not an object", seg(`[]`) + "." + seg(`{}`) + ".", errInvalidJSON, ""},
		{"claims not JSON", seg(`{"alg":"HS256"}`) + "." + seg(`{`) + ".", errInvalidJSON, ""},
		{"signature not base64", seg(`{"alg":"HS256"}`) + "." + seg(`{}`) + ".*", errInvalidJSON, ""},
		{"no alg", seg(`{"typ":"JWT"}`) + "." + seg(`{}`) + ".", errInvalidAlg, ""},
		{"alg none", seg(`{"alg":"none"}`) + "." + seg(`{}`) + ".", errInvalidAlg, ""},
		{"alg not a string", seg(`{"alg":256}`) + "." + seg(`{}`) + ".", errInvalidAlg, ""},
		{"null claims", seg(`{"alg":"HS256"}`) + "." + seg(`null`) + ".", errInvalidClaims, ""},
	}
	for _, tt := range tests {
		tok, err := parseToken(tt.token)
		if err != tt.err || err == nil && tok.alg != tt.alg {
			t.Errorf("%s: parseToken = %+v, %v; want alg %q, %v", tt.name, tok, err, tt.alg, tt.err)
		}
	}
}

func TestBearerAndCookie(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Bearer abc", "abc"}, {"bearer  abc", "abc"}, {"  Bearer abc", "abc"}, {"Bearerabc", ""},
		{"Bearer ", ""}, {"Basic abc", ""}, {"xBearer abc", "abc"}, {"BEARER abc", ""}, {"", ""},
	} {
		if got := bearer(tt.in); got != tt.want {
			t.Errorf("bearer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ header, name, want string }{
		{"a=1; tok=abc", "tok", "abc"}, {"tok=abc", "tok", "abc"}, {`tok="abc"`, "tok", "abc"},
		{"a=1", "tok", ""}, {"xtok=abc", "tok", ""}, {"", "tok", ""},
	} {
		if got := cookie(tt.header, tt.name); got != tt.want {
			t.Errorf("cookie(%q, %q) = %q, want %q", tt.header, tt.name, got, tt.want)
		}
	}
}

// FuzzParseToken checks that any input either parses into a token whose
// parts are consistent with it, or is refused with one of Kong's reasons;
// it never panics.
func FuzzParseToken(f *testing.F) {
	seg := func(s string) string { return b64([]byte(s)) }
	for _, s := range []string{
		seg(`{"alg":"HS256","typ":"JWT"}`) + "." + seg(`{"iss":"k","exp":1}`) + "." + seg("sig"),
		seg(`{"alg":"RS256"}`) + "." + seg(`null`) + ".",
		"a.b.c", "..", ".", "", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.",
	} {
		f.Add(s)
	}
	reasons := []error{errInvalidJSON, errInvalidAlg, errInvalidClaims, errInvalidSignature}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseToken(s)
		if err != nil {
			if tok != nil || !slices.Contains(reasons, err) {
				t.Fatalf("parseToken(%q) = %v, %v", s, tok, err)
			}
			return
		}
		if !slices.Contains(algorithms, tok.alg) || tok.header == nil || !strings.HasPrefix(s, tok.signed+".") {
			t.Fatalf("parseToken(%q) = alg %q, signed %q", s, tok.alg, tok.signed)
		}
		if _, err := decodeSegment(s[len(tok.signed)+1:]); err != nil {
			t.Fatalf("parseToken(%q) accepted a signature that does not decode: %v", s, err)
		}
	})
}
