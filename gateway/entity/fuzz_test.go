package entity

import (
	"strings"
	"testing"
)

// FuzzParseCacheKey checks that ParseCacheKey and CacheKey.String are
// inverse: a parsed key prints back as its input, and a valid key (a
// non-empty kind without ':'; any id, ':' included) parses back to itself.
func FuzzParseCacheKey(f *testing.F) {
	for _, s := range []string{
		"services:0b3a7d36-5cf2-4b6e-a2a6-9ae0c2d35c8f", "keyauth_credentials:a:b:c", "router:version",
		"plugins_iterator:version", ":id", "kind:", "nokind", "", "::", "services:\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := ParseCacheKey(s)
		if !ok {
			if strings.Contains(s, ":") && !strings.HasPrefix(s, ":") {
				t.Fatalf("ParseCacheKey(%q) refused a key with a kind", s)
			}
			if k != (CacheKey{}) {
				t.Fatalf("ParseCacheKey(%q) = %+v with ok=false, want the zero key", s, k)
			}
			return
		}
		if k.Kind == "" || strings.Contains(string(k.Kind), ":") {
			t.Fatalf("ParseCacheKey(%q) = kind %q", s, k.Kind)
		}
		if got := k.String(); got != s {
			t.Fatalf("ParseCacheKey(%q).String() = %q", s, got)
		}
		kind, id := string(k.Kind), k.ID
		back, ok := ParseCacheKey(CacheKey{Kind: Kind(kind), ID: id}.String())
		if !ok || back != k {
			t.Fatalf("round trip of %+v gave %+v, %v", k, back, ok)
		}
	})
}
