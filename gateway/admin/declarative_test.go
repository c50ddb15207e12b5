package admin

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// nestedConfig is a configuration as decK writes it: nested entities,
// references by name.
const nestedConfig = `
_format_version: "3.0"
services:
- name: orders
  url: http://orders.internal:8080/api
  tags: [team-a]
  routes:
  - name: orders-public
    paths: [/orders]
    plugins:
    - name: rate-limiting
      config: {minute: 20}
  plugins:
  - name: key-auth
    config: {hide_credentials: true}
consumers:
- username: alice
  custom_id: cust-1
  keyauth_credentials:
  - key: alice-key
  basicauth_credentials:
  - {username: alice-basic, password: open-sesame}
  jwt_secrets:
  - {key: alice-iss, secret: alice-secret}
  plugins:
  - name: rate-limiting
    config: {hour: 100}
routes:
- name: flat-route
  hosts: [example.com]
  service: orders
plugins:
- name: rate-limiting
  config: {second: 5}
keyauth_credentials:
- key: flat-key
  consumer: {username: alice}
basicauth_credentials:
- {username: flat-basic, password: pw, consumer: alice}
jwt_secrets:
- {consumer: alice, algorithm: HS512}
upstreams: []
`

// badEntities has one problem in each of its entities.
const badEntities = `
_format_version: "3.0"
services:
- name: a
  port: 80.5
  routes:
  - paths: [nope]
- {name: b, host: h, protocol: ftp}
plugins:
- {name: rate-limiting, config: {}}
- {name: key-auth, service: nowhere}`

func TestDeclarativeParse(t *testing.T) {
	d := NewDeclarative(Options{Store: newStore(t), Plugins: testRegistry()})
	ents, err := d.Parse([]byte(nestedConfig))
	if err != nil {
		t.Fatal(err)
	}
	count := map[entity.Kind]int{}
	for _, e := range ents {
		count[e.EntityKind()]++
	}
	want := map[entity.Kind]int{entity.KindService: 1, entity.KindRoute: 2, entity.KindConsumer: 1, entity.KindPlugin: 4, entity.KindKeyAuth: 2,
		entity.KindBasicAuth: 2, entity.KindJWT: 2}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: %d entities, want %d", k, count[k], n)
		}
	}
	svc := ents[0].(*entity.Service)
	for _, e := range ents {
		if r, ok := e.(*entity.Route); ok && (r.Service == nil || r.Service.ID != svc.ID) {
			t.Errorf("route %v does not reference service %s", *r.Name, svc.ID)
		}
	}
	again, err := d.Parse([]byte(nestedConfig))
	if err != nil || again[0].PrimaryKey() != svc.ID {
		t.Errorf("ids differ between two parses of the same file: %v, %v", again[0].PrimaryKey(), svc.ID)
	}

	tests := []struct {
		name, config string
		want         []string
	}{
		{"no version", `services: []`, []string{"_format_version: required field missing"}},
		{"bad version", `{_format_version: "9.9"}`, []string{"_format_version: expected one of: 1.1, 2.1, 3.0"}},
		{"not yaml", `{`, []string{"cannot parse"}},
		{"duplicates", "_format_version: \"3.0\"\nservices:\n- {name: a, host: h}\n- {name: a, host: h2}\nconsumers:\n- {username: u}\n- {username: u}\n",
			[]string{"services[1]: duplicate services: another entity has the id or name 'a'",
				"consumers[1]: duplicate consumers: another entity has the id or username 'u'"}},
		{"duplicate plugins", "_format_version: \"3.0\"\nplugins:\n- {name: key-auth}\n- {name: key-auth, config: {realm: x}}\n",
			[]string{"plugins[1]: duplicate plugins: the same as plugins[0]"}},
		{"top-level errors", badEntities + `
upstreams: [{name: u}]
widgets: []`, []string{
			"upstreams: not supported by this node yet", "widgets: unknown field"}},
		{"every entity error listed", badEntities, []string{
			"services[0]: port: expected an integer",
			"services[1]: protocol: expected one of: http, https",
			"services[0].routes[0]: paths: should start with: / (fixed path) or ~/ (regex path)",
			"plugins[0]: config.@entity",
			"plugins[1]: service: references no services in the file: 'nowhere'",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Parse([]byte(tt.config))
			var de *DeclarativeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a DeclarativeError", err)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(de.Problems, func(p string) bool { return strings.Contains(p, w) }) {
					t.Errorf("problems %q lack %q", de.Problems, w)
				}
			}
		})
	}
}

// TestDeclarativeImportExport imports a file, reads it back through the
// Admin API, exports it, imports the export into another datastore and
// exports that: the two exports are equal. Importing the same file again
// changes nothing.
func TestDeclarativeImportExport(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store { return newStore(t) }},
		{"postgres", openPostgres},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			rec := &recorder{}
			st := b.open(t)
			d := NewDeclarative(Options{Store: st, Plugins: testRegistry(), Cluster: rec})
			ents, err := d.Parse([]byte(nestedConfig))
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Import(ctx, ents); err != nil {
				t.Fatal(err)
			}
			if keys := rec.keys(t); !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "routes:") }) || !slices.Contains(keys, "keyauth_credentials:alice-key") {
				t.Errorf("import emitted %v, want the routes' and credential keys among them", keys)
			}
			if err := d.Import(ctx, ents); err != nil {
				t.Fatalf("second import: %v", err)
			}
			srv := httptest.NewServer(New(Options{Store: st, Plugins: testRegistry()}))
			t.Cleanup(srv.Close)
			e := &testEnv{t: t, srv: srv}
			if r := e.must(200, "GET", "/routes/flat-route", "", ""); r["service"].(map[string]any)["id"] != id(e.must(200, "GET", "/services/orders", "", "")) {
				t.Errorf("flat route's service = %v", r["service"])
			}
			if p := e.must(200, "GET", "/consumers/alice/plugins", "", "")["data"].([]any); len(p) != 1 {
				t.Errorf("alice has %d plugins, want 1", len(p))
			}
			alice := id(e.must(200, "GET", "/consumers/alice", "", ""))
			for user, pw := range map[string]string{"alice-basic": "open-sesame", "flat-basic": "pw"} {
				if got := e.must(200, "GET", "/consumers/alice/basic-auth/"+user, "", "")["password"]; got != entity.HashPassword(alice, pw) {
					t.Errorf("%s's password stored as %v, want Kong's hash", user, got)
				}
			}
			if j := e.must(200, "GET", "/consumers/alice/jwt/alice-iss", "", ""); j["secret"] != "alice-secret" || j["algorithm"] != "HS256" {
				t.Errorf("nested jwt secret = %v", j)
			}
			if j := e.must(200, "GET", "/consumers/alice/jwt", "", "")["data"].([]any); len(j) != 2 {
				t.Errorf("alice has %d jwt secrets, want 2", len(j))
			}
			first, err := d.Export(ctx)
			if err != nil {
				t.Fatal(err)
			}
			other := NewDeclarative(Options{Store: newStore(t), Plugins: testRegistry()})
			ents2, err := other.Parse(first)
			if err != nil {
				t.Fatalf("the export does not parse: %v\n%s", err, first)
			}
			if err := other.Import(ctx, ents2); err != nil {
				t.Fatal(err)
			}
			second, err := other.Export(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(first) != string(second) {
				t.Errorf("export after a round trip differs:\n%s\n---\n%s", first, second)
			}
		})
	}
}

// TestDeclarativeCertificatesAndStreamRoutes reads a file with a
// certificate, an https service presenting it and a stream route, imports
// it, and checks that its export parses back into the same entities; a
// certificate without an id gets the same one on every parse.
func TestDeclarativeCertificatesAndStreamRoutes(t *testing.T) {
	cert, key := selfSigned("client.example.com", true)
	indent := func(pem string) string { return strings.ReplaceAll(strings.TrimSpace(pem), "\n", "\n    ") }
	config := `
_format_version: "3.0"
certificates:
- id: 0d5e5c52-4e38-4c2b-9d44-6a4b8a1e7c01
  cert: |
    ` + indent(cert) + `
  key: |
    ` + indent(key) + `
  snis: [client.example.com]
- cert: |
    ` + indent(cert) + `
  key: |
    ` + indent(key) + `
services:
- name: mtls
  url: https://upstream.internal
  client_certificate: 0d5e5c52-4e38-4c2b-9d44-6a4b8a1e7c01
  routes:
  - name: tcp-route
    protocols: [tcp, tls]
    destinations: [{ip: 10.0.0.0/8, port: 80}]
`
	ctx := context.Background()
	d := NewDeclarative(Options{Store: newStore(t), Plugins: testRegistry()})
	ents, err := d.Parse([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 4 || ents[0].EntityKind() != entity.KindCertificate || ents[1].EntityKind() != entity.KindCertificate {
		t.Fatalf("entities %v, want the two certificates first, then the service and its route", ents)
	}
	again, err := d.Parse([]byte(config))
	if err != nil || again[1].PrimaryKey() != ents[1].PrimaryKey() {
		t.Errorf("a certificate without an id got %s, then %s (%v); want the same id", ents[1].PrimaryKey(), again[1].PrimaryKey(), err)
	}
	svc := ents[2].(*entity.Service)
	route := ents[3].(*entity.Route)
	if svc.ClientCertificate == nil || svc.ClientCertificate.ID != ents[0].PrimaryKey() ||
		len(route.Destinations) != 1 || *route.Destinations[0].IP != "10.0.0.0/8" || *route.Destinations[0].Port != 80 {
		t.Fatalf("service %+v, route %+v; want the certificate referenced and the destination read", svc, route)
	}
	if err := d.Import(ctx, ents); err != nil {
		t.Fatal(err)
	}
	exported, err := d.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	back, err := d.Parse(exported)
	if err != nil {
		t.Fatalf("the export does not parse: %v\n%s", err, exported)
	}
	if len(back) != len(ents) {
		t.Fatalf("the export holds %d entities, want %d:\n%s", len(back), len(ents), exported)
	}
	// The export lists each kind by id: the certificate whose id derives
	// from its (random) content may come first or second.
	byID := make(map[string]entity.Entity, len(back))
	for _, e := range back {
		byID[string(e.EntityKind())+"/"+e.PrimaryKey()] = e
	}
	for i, e := range ents {
		if byID[string(e.EntityKind())+"/"+e.PrimaryKey()] == nil {
			t.Errorf("entity %d: %s %s missing after the round trip", i, e.EntityKind(), e.PrimaryKey())
		}
	}
	c, _ := byID[string(entity.KindCertificate)+"/"+ents[0].PrimaryKey()].(*entity.Certificate)
	if c == nil || c.Cert != cert || len(c.SNIs) != 1 {
		t.Errorf("certificate after the round trip: %+v; want the same cert with its sni", c)
	}
}

// TestDeclarativeTransform checks Kong's _transform: a file's basic-auth
// passwords are hashed unless it says _transform: false (as exports do,
// since they hold the hashes), so that an export imports back unchanged.
func TestDeclarativeTransform(t *testing.T) {
	const consumer = "11111111-1111-4111-8111-111111111111"
	d := NewDeclarative(Options{Store: newStore(t), Plugins: testRegistry()})
	file := func(transform string) string {
		return "_format_version: \"3.0\"\n" + transform + "consumers:\n- id: " + consumer +
			"\n  username: u\n  basicauth_credentials:\n  - {username: b, password: pw}\n"
	}
	for _, tt := range []struct{ transform, want string }{
		{"", entity.HashPassword(consumer, "pw")},
		{"_transform: true\n", entity.HashPassword(consumer, "pw")},
		{"_transform: false\n", "pw"},
	} {
		ents, err := d.Parse([]byte(file(tt.transform)))
		if err != nil {
			t.Fatal(err)
		}
		if got := ents[1].(*entity.BasicAuthCredential).Password; got != tt.want {
			t.Errorf("%q: password %q, want %q", tt.transform, got, tt.want)
		}
	}
	_, err := d.Parse([]byte(file("_transform: maybe\n")))
	var de *DeclarativeError
	if !errors.As(err, &de) || !slices.Contains(de.Problems, "_transform: expected a boolean") {
		t.Errorf("a bad _transform gave %v", err)
	}
}
