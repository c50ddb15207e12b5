package entity

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	const uid = "0b6e0a3c-3a11-4c6a-9d55-5a8f0c2f1a01"
	name := func(s string) *string { return &s }
	service := func(f func(*Service)) Entity {
		s := Default(KindService).(*Service)
		s.ID, s.Host = uid, "example.com"
		f(s)
		return s
	}
	route := func(f func(*Route)) Entity {
		r := Default(KindRoute).(*Route)
		r.ID, r.Paths = uid, []string{"/"}
		f(r)
		return r
	}
	tests := []struct {
		name  string
		e     Entity
		field string // "" when valid
		want  string
	}{
		{"default service with host", service(func(*Service) {}), "", ""},
		{"service without host", service(func(s *Service) { s.Host = "" }), "host", "required field missing"},
		{"service bad host", service(func(s *Service) { s.Host = "a b" }), "host", "invalid value"},
		{"service ip host", service(func(s *Service) { s.Host = "10.0.0.1" }), "", ""},
		{"service path", service(func(s *Service) { s.Path = name("x") }), "path", "should start with: /"},
		{"service retries", service(func(s *Service) { s.Retries = 40000 }), "retries", "between 0 and 32767"},
		{"service timeout", service(func(s *Service) { s.ReadTimeout = 0 }), "read_timeout", "between 1 and"},
		{"service protocol", service(func(s *Service) { s.Protocol = "tcp" }), "protocol", "expected one of: http, https"},
		{"service name", service(func(s *Service) { s.Name = name("a/b") }), "name", "invalid value 'a/b'"},
		{"service utf8 name", service(func(s *Service) { s.Name = name("café-1") }), "", ""},
		{"service tag", service(func(s *Service) { s.Tags = []string{"a,b"} }), "tags", "invalid tag"},
		{"bad id", service(func(s *Service) { s.ID = "x" }), "id", "expected a valid UUID"},
		{"route prefix path", route(func(*Route) {}), "", ""},
		{"route regex path", route(func(r *Route) { r.Paths = []string{`~/v(?P<n>\d+)$`} }), "", ""},
		{"route bad regex", route(func(r *Route) { r.Paths = []string{"~/(a"} }), "paths", "invalid regex"},
		{"route relative path", route(func(r *Route) { r.Paths = []string{"a"} }), "paths", "should start with"},
		{"route nothing", route(func(r *Route) { r.Paths = nil }), "@entity", "must set one of"},
		{"route headers only", route(func(r *Route) { r.Paths, r.Headers = nil, map[string][]string{"x": {"1"}} }), "", ""},
		{"route host header", route(func(r *Route) { r.Headers = map[string][]string{"HOST": {"a"}} }), "headers", "host"},
		{"route leftmost wildcard", route(func(r *Route) { r.Hosts = []string{"*.example.com"} }), "", ""},
		{"route rightmost wildcard", route(func(r *Route) { r.Hosts = []string{"example.*"} }), "", ""},
		{"route host with port", route(func(r *Route) { r.Hosts = []string{"example.com:8080"} }), "", ""},
		{"route inner wildcard", route(func(r *Route) { r.Hosts = []string{"a.*.com"} }), "hosts", "leftmost or rightmost"},
		{"route partial wildcard", route(func(r *Route) { r.Hosts = []string{"a*.com"} }), "hosts", "leftmost or rightmost"},
		{"route two wildcards", route(func(r *Route) { r.Hosts = []string{"*.a.*"} }), "hosts", "at most one"},
		{"route method", route(func(r *Route) { r.Methods = []string{"get"} }), "methods", "invalid value"},
		{"certificate sni with a port", &Certificate{ID: uid, SNIs: []string{"a.example.com:443"}}, "snis", "invalid value"},
		{"certificate sni ip", &Certificate{ID: uid, SNIs: []string{"10.0.0.1"}}, "snis", "invalid value"},
		{"certificate unparsable", &Certificate{ID: uid, Cert: "x", Key: "y"}, "cert", "invalid certificate: "},
		{"route protocols", route(func(r *Route) { r.Protocols = []string{"ftp"} }), "protocols", "expected one of"},
		{"route tcp with paths", route(func(r *Route) { r.Protocols = []string{"tcp"} }), "paths", "cannot set 'paths'"},
		{"route tcp destination", route(func(r *Route) {
			r.Protocols, r.Paths, r.Destinations = []string{"tcp"}, nil, []CIDRPort{{IP: ptr("10.0.0.0/8")}}
		}), "", ""},
		{"route tcp bad source", route(func(r *Route) {
			r.Protocols, r.Paths, r.Sources = []string{"tcp"}, nil, []CIDRPort{{IP: ptr("10.0.0.0/33")}}
		}), "sources", "invalid ip or cidr range"},
		{"route tls_passthrough without snis", route(func(r *Route) {
			r.Protocols, r.Paths, r.Destinations = []string{"tls_passthrough"}, nil, []CIDRPort{{IP: ptr("10.0.0.1")}}
		}), "@entity", "must set snis"},
		{"route http with destinations", route(func(r *Route) { r.Destinations = []CIDRPort{{IP: ptr("10.0.0.1")}} }),
			"destinations", "cannot set 'destinations'"},
		{"route mixed protocols", route(func(r *Route) { r.Protocols = []string{"https", "tls"} }),
			"protocols", "mutually exclusive"},
		{"route path handling", route(func(r *Route) { r.PathHandling = "v2" }), "path_handling", "v0, v1"},
		{"route redirect", route(func(r *Route) { r.HTTPSRedirectStatusCode = 303 }), "https_redirect_status_code", "426"},
		{"route service ref", route(func(r *Route) { r.Service = &Ref{ID: "x"} }), "service", "expected a valid UUID"},
		{"consumer empty", &Consumer{ID: uid}, "@entity", "at least one of"},
		{"consumer custom id", &Consumer{ID: uid, CustomID: name("c")}, "", ""},
		{"plugin no name", &Plugin{ID: uid, Protocols: PluginProtocols}, "name", "required"},
		{"plugin protocol", &Plugin{ID: uid, Name: "x", Protocols: []string{"udp"}}, "protocols", "expected one of"},
		{"key-auth no consumer", &KeyAuthCredential{ID: uid, Key: "k"}, "consumer", "required"},
		{"key-auth ok", &KeyAuthCredential{ID: uid, Key: "k", Consumer: &Ref{ID: uid}}, "", ""},
		{"basic-auth ok", &BasicAuthCredential{ID: uid, Username: "u", Password: "h", Consumer: &Ref{ID: uid}}, "", ""},
		{"basic-auth no username", &BasicAuthCredential{ID: uid, Password: "h", Consumer: &Ref{ID: uid}}, "username", "required field missing"},
		{"basic-auth no password", &BasicAuthCredential{ID: uid, Username: "u", Consumer: &Ref{ID: uid}}, "password", "required field missing"},
		{"basic-auth no consumer", &BasicAuthCredential{ID: uid, Username: "u", Password: "h"}, "consumer", "required"},
		{"jwt ok", &JWTSecret{ID: uid, Key: "k", Secret: "s", Algorithm: "HS256", Consumer: &Ref{ID: uid}}, "", ""},
		{"jwt algorithm", &JWTSecret{ID: uid, Key: "k", Algorithm: "none", Consumer: &Ref{ID: uid}}, "algorithm", "expected one of: HS256"},
		{"jwt RS256 needs a key", &JWTSecret{ID: uid, Key: "k", Algorithm: "RS256", Consumer: &Ref{ID: uid}}, "rsa_public_key", "required field missing"},
		{"jwt RS256 entity check", &JWTSecret{ID: uid, Key: "k", Algorithm: "RS256", Consumer: &Ref{ID: uid}}, "@entity", "failed conditional validation given value of field 'algorithm'"},
		{"jwt ES256 key optional", &JWTSecret{ID: uid, Key: "k", Algorithm: "ES256", Consumer: &Ref{ID: uid}}, "", ""},
		{"jwt bad key", &JWTSecret{ID: uid, Key: "k", Algorithm: "RS512", RSAPublicKey: name("x"), Consumer: &Ref{ID: uid}}, "rsa_public_key", "invalid key"},
		{"jwt bad key for ES", &JWTSecret{ID: uid, Key: "k", Algorithm: "ES384", RSAPublicKey: name("x"), Consumer: &Ref{ID: uid}}, "rsa_public_key", "invalid key"},
		{"jwt key beside an HS secret is not checked", &JWTSecret{ID: uid, Key: "k", Algorithm: "HS256", RSAPublicKey: name("bar"), Consumer: &Ref{ID: uid}}, "", ""},
		{"jwt RS256 with key", &JWTSecret{ID: uid, Key: "k", Algorithm: "RS256", RSAPublicKey: name(rsaPublicPEM), Consumer: &Ref{ID: uid}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Validate(tt.e)
			if tt.field == "" {
				if errs != nil {
					t.Fatalf("errors %v, want none", errs)
				}
				return
			}
			if msg, ok := errs[tt.field]; !ok || !strings.Contains(msg, tt.want) {
				t.Fatalf("errors %v, want %s: %q", errs, tt.field, tt.want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) {
			e := Default(k)
			if e == nil || e.EntityKind() != k {
				t.Fatalf("Default(%s) = %#v", k, e)
			}
		})
	}
	if Default("nope") != nil {
		t.Error("Default of an unknown kind is not nil")
	}
	r := Default(KindRoute).(*Route)
	if r.HTTPSRedirectStatusCode != 426 || !r.StripPath || r.PathHandling != "v0" || len(r.Protocols) != 2 {
		t.Errorf("route defaults %+v", r)
	}
	if DefaultPort("https") != 443 || DefaultPort("http") != 80 {
		t.Error("DefaultPort")
	}
}

// TestFieldsMatchEntityJSON checks that Fields lists exactly the JSON keys
// of each entity type, so that no field is unwritable or unchecked.
func TestFieldsMatchEntityJSON(t *testing.T) {
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) {
			data, err := json.Marshal(Default(k))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			for key := range doc {
				if _, ok := Fields(k)[key]; !ok {
					t.Errorf("JSON key %q missing from Fields", key)
				}
			}
			for key := range Fields(k) {
				if _, ok := doc[key]; !ok {
					t.Errorf("field %q is not a JSON key of %s", key, k)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }
