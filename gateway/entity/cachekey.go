package entity

import "strings"

// CacheKey identifies one cached value: a kind and the value it is looked
// up by (an id, or a credential's key). Its zero value is invalid.
//
// CacheKey is a comparable struct rather than a string so that the proxy's
// hit path can build one from request data without allocating.
type CacheKey struct {
	Kind Kind
	ID   string
}

// Synthetic keys: invalidating one tells every node to rebuild a snapshot
// (Kong's "router:version" and "plugins_iterator:version").
var (
	RouterVersion  = CacheKey{Kind: "router", ID: "version"}
	PluginsVersion = CacheKey{Kind: "plugins_iterator", ID: "version"}
)

// String returns "<kind>:<id>", the key's form in cluster events, in cache
// backends and in the Admin API's /cache/{key}.
func (k CacheKey) String() string { return string(k.Kind) + ":" + k.ID }

// ParseCacheKey parses the String form of a CacheKey.
func ParseCacheKey(s string) (CacheKey, bool) {
	kind, id, ok := strings.Cut(s, ":")
	if !ok || kind == "" {
		return CacheKey{}, false
	}
	return CacheKey{Kind: Kind(kind), ID: id}, true
}

// LookupKey returns the key under which the proxy caches e: a credential by
// its schema's CacheKey field (key or username), every other entity by its
// id.
func LookupKey(e Entity) CacheKey {
	switch c := e.(type) {
	case *KeyAuthCredential:
		return CacheKey{Kind: KindKeyAuth, ID: c.Key}
	case *BasicAuthCredential:
		return CacheKey{Kind: KindBasicAuth, ID: c.Username}
	case *JWTSecret:
		return CacheKey{Kind: KindJWT, ID: c.Key}
	}
	return CacheKey{Kind: e.EntityKind(), ID: e.PrimaryKey()}
}

// InvalidationKeys returns the cache keys a change to e must purge on every
// node: its own lookup key. The key names the entity, so it is also all a
// node's snapshots need (a route, service, certificate or plugin is read
// again by that key): writes emit no RouterVersion or PluginsVersion, which
// would double the events and could reach a node apart from the entity's.
func InvalidationKeys(e Entity) []CacheKey {
	return []CacheKey{LookupKey(e)}
}
