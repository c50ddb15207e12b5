package storetest

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Service returns the record of a new service with a random id, named name
// (an empty name leaves it unnamed). Datastore benchmarks may use it.
func Service(name string) store.Record {
	s := &entity.Service{ID: uuid.NewString(), CreatedAt: 1700000000, UpdatedAt: 1700000000,
		Name: strPtr(name), Retries: 5, Protocol: "http", Host: "example.com", Port: 80,
		ConnectTimeout: 60000, WriteTimeout: 60000, ReadTimeout: 60000, Tags: []string{"t1"}, Enabled: true}
	return record(s)
}

// Route returns the record of a new route with a random id, named name,
// referencing serviceID (empty for none).
func Route(name, serviceID string) store.Record {
	r := &entity.Route{ID: uuid.NewString(), CreatedAt: 1700000000, UpdatedAt: 1700000000,
		Name: strPtr(name), Protocols: []string{"http", "https"}, Paths: []string{"/" + name},
		HTTPSRedirectStatusCode: 426, StripPath: true, PathHandling: "v0", Service: ref(serviceID)}
	return record(r)
}

// Consumer returns the record of a new consumer with a random id.
func Consumer(username, customID string) store.Record {
	return record(&entity.Consumer{ID: uuid.NewString(), CreatedAt: 1700000000,
		Username: strPtr(username), CustomID: strPtr(customID)})
}

// Plugin returns the record of a new plugin with a random id, scoped to the
// given route, service and consumer ids (empty for none).
func Plugin(name, routeID, serviceID, consumerID string) store.Record {
	return record(&entity.Plugin{ID: uuid.NewString(), CreatedAt: 1700000000, Name: name,
		Route: ref(routeID), Service: ref(serviceID), Consumer: ref(consumerID),
		Config: json.RawMessage(`{"minute":5}`), Protocols: []string{"http"}, Enabled: true})
}

// KeyAuth returns the record of a new key-auth credential with a random id.
func KeyAuth(key, consumerID string) store.Record {
	return record(&entity.KeyAuthCredential{ID: uuid.NewString(), CreatedAt: 1700000000,
		Key: key, Consumer: ref(consumerID)})
}

// BasicAuth returns the record of a new basic-auth credential with a
// random id.
func BasicAuth(username, consumerID string) store.Record {
	return record(&entity.BasicAuthCredential{ID: uuid.NewString(), CreatedAt: 1700000000,
		Username: username, Password: entity.HashPassword(consumerID, "pw"), Consumer: ref(consumerID)})
}

// JWT returns the record of a new jwt secret with a random id.
func JWT(key, consumerID string) store.Record {
	return record(&entity.JWTSecret{ID: uuid.NewString(), CreatedAt: 1700000000,
		Key: key, Secret: "s", Algorithm: "HS256", Consumer: ref(consumerID)})
}

// withID returns a copy of r whose id, in both the record and its JSON
// document, is id.
func withID(r store.Record, id string) store.Record {
	e := decode(r)
	switch v := e.(type) {
	case *entity.Service:
		v.ID = id
	case *entity.Route:
		v.ID = id
	case *entity.Consumer:
		v.ID = id
	}
	return record(e)
}

// renamed returns a copy of a service or route record with its name set.
func renamed(r store.Record, name string) store.Record {
	e := decode(r)
	switch v := e.(type) {
	case *entity.Service:
		v.Name = strPtr(name)
	case *entity.Route:
		v.Name = strPtr(name)
	}
	return record(e)
}

// repointed returns a copy of a route record referencing serviceID.
func repointed(r store.Record, serviceID string) store.Record {
	e := decode(r).(*entity.Route)
	e.Service = ref(serviceID)
	return record(e)
}

func decode(r store.Record) entity.Entity {
	e, err := entity.Decode(r.Kind, r.Data)
	if err != nil {
		panic(fmt.Sprintf("storetest: fixture: %v", err))
	}
	return e
}

func record(e entity.Entity) store.Record {
	data, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("storetest: fixture: %v", err))
	}
	return store.NewRecord(e, data)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ref(id string) *entity.Ref {
	if id == "" {
		return nil
	}
	return &entity.Ref{ID: id}
}

func insert(r store.Record) store.Op { return store.Op{Type: store.OpInsert, Record: r} }
func update(r store.Record) store.Op { return store.Op{Type: store.OpUpdate, Record: r} }
func del(r store.Record) store.Op {
	return store.Op{Type: store.OpDelete, Record: store.Record{Kind: r.Kind, ID: r.ID}}
}
