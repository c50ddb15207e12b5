// Package entity defines the gateway's configuration entities (certificates,
// services, routes, consumers, plugins and the key-auth, basic-auth and jwt
// credentials) with Kong's field
// names, defaults and cache keys. It performs no I/O.
//
// Every entity is stored as its JSON encoding. A Schema describes how the
// generic datastore layer indexes a kind: which fields are unique and which
// fields are foreign keys.
package entity

import (
	"encoding/json"
	"fmt"
)

// Kind names an entity collection, spelled as Kong's table and endpoint
// name ("services", "routes", ...).
type Kind string

// The kinds the gateway knows.
const (
	KindCertificate Kind = "certificates"
	KindService     Kind = "services"
	KindRoute       Kind = "routes"
	KindConsumer    Kind = "consumers"
	KindPlugin      Kind = "plugins"
	KindKeyAuth     Kind = "keyauth_credentials"
	KindBasicAuth   Kind = "basicauth_credentials"
	KindJWT         Kind = "jwt_secrets"
)

// Kinds lists every entity kind in dependency order: a kind appears after
// every kind it references.
var Kinds = []Kind{KindCertificate, KindService, KindRoute, KindConsumer, KindPlugin, KindKeyAuth, KindBasicAuth, KindJWT}

// Ref is a foreign key as Kong writes it: {"id": "<uuid>"}. A nil *Ref is
// JSON null.
type Ref struct {
	ID string `json:"id"`
}

// Schema tells the datastore how to index one kind.
type Schema struct {
	Kind Kind
	// Unique lists the fields whose non-empty values are unique within the kind.
	Unique []string
	// Foreign maps a field to the kind it references.
	Foreign map[string]Kind
	// Cascade lists the foreign fields whose referenced entity's deletion
	// deletes this entity too. A foreign field not listed here blocks the
	// deletion of the referenced entity (Kong's foreign key violation).
	Cascade []string
	// CacheKey is the unique field the proxy looks an entity up by (Kong's
	// cache_key: a credential's key or username); empty for the id.
	CacheKey string
}

// Schemas holds the schema of every kind, keyed by kind.
var Schemas = map[Kind]Schema{
	KindCertificate: {Kind: KindCertificate},
	KindService: {Kind: KindService, Unique: []string{"name"},
		Foreign: map[string]Kind{"client_certificate": KindCertificate}},
	KindRoute:    {Kind: KindRoute, Unique: []string{"name"}, Foreign: map[string]Kind{"service": KindService}},
	KindConsumer: {Kind: KindConsumer, Unique: []string{"username", "custom_id"}},
	KindPlugin: {Kind: KindPlugin, Unique: []string{"cache_key", "instance_name"},
		Foreign: map[string]Kind{"route": KindRoute, "service": KindService, "consumer": KindConsumer},
		Cascade: []string{"route", "service", "consumer"}},
	KindKeyAuth: {Kind: KindKeyAuth, Unique: []string{"key"}, CacheKey: "key",
		Foreign: map[string]Kind{"consumer": KindConsumer}, Cascade: []string{"consumer"}},
	KindBasicAuth: {Kind: KindBasicAuth, Unique: []string{"username"}, CacheKey: "username",
		Foreign: map[string]Kind{"consumer": KindConsumer}, Cascade: []string{"consumer"}},
	KindJWT: {Kind: KindJWT, Unique: []string{"key"}, CacheKey: "key",
		Foreign: map[string]Kind{"consumer": KindConsumer}, Cascade: []string{"consumer"}},
}

// Entity is implemented by every entity type.
type Entity interface {
	// EntityKind returns the entity's kind.
	EntityKind() Kind
	// PrimaryKey returns the entity's id.
	PrimaryKey() string
	// Index returns the values of the schema's unique fields (empty when
	// unset) and foreign fields (empty when null).
	Index() (unique map[string]string, foreign map[string]string)
}

// Decode decodes the stored JSON of an entity of kind k.
func Decode(k Kind, data []byte) (Entity, error) {
	var e Entity
	switch k {
	case KindCertificate:
		e = new(Certificate)
	case KindService:
		e = new(Service)
	case KindRoute:
		e = new(Route)
	case KindConsumer:
		e = new(Consumer)
	case KindPlugin:
		e = new(Plugin)
	case KindKeyAuth:
		e = new(KeyAuthCredential)
	case KindBasicAuth:
		e = new(BasicAuthCredential)
	case KindJWT:
		e = new(JWTSecret)
	default:
		return nil, fmt.Errorf("entity: unknown kind %q", k)
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("entity: cannot decode %s: %w", k, err)
	}
	return e, nil
}

func refID(r *Ref) string {
	if r == nil {
		return ""
	}
	return r.ID
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
