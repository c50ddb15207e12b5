package basicauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
	"github.com/sluice-gw/sluice/gateway/store"
)

// memCredentials is an in-memory Credentials that counts lookups.
type memCredentials struct {
	mu        sync.Mutex
	creds     map[string]*entity.BasicAuthCredential
	consumers map[string]*entity.Consumer
	err       error
	lookups   []string
}

func (m *memCredentials) BasicAuth(_ context.Context, username string) (*entity.BasicAuthCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups = append(m.lookups, username)
	return m.creds[username], m.err
}

func (m *memCredentials) Consumer(_ context.Context, id string) (*entity.Consumer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consumers[id], m.err
}

func ptr(s string) *string { return &s }

const aliceID = "11111111-1111-4111-8111-111111111111"

func newCreds() *memCredentials {
	cred := func(id, user, pass, consumer string) *entity.BasicAuthCredential {
		return &entity.BasicAuthCredential{ID: id, Username: user, Password: entity.HashPassword(consumer, pass),
			Consumer: &entity.Ref{ID: consumer}}
	}
	return &memCredentials{
		creds: map[string]*entity.BasicAuthCredential{
			"alice":  cred("cred-1", "alice", "s3cret:with colon", aliceID),
			"empty":  cred("cred-2", "empty", "", aliceID),
			"orphan": cred("cred-3", "orphan", "x", "ghost"),
		},
		consumers: map[string]*entity.Consumer{
			aliceID: {ID: aliceID, Username: ptr("alice"), CustomID: ptr("a-1")},
			"anon":  {ID: "anon", Username: ptr("anonymous")},
		},
	}
}

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New(nil))
	tests := []struct {
		name, config, want string
		field, msg         string
	}{
		{name: "defaults", config: `{}`, want: `{"anonymous":null,"hide_credentials":false,"realm":"service"}`},
		{name: "custom", config: `{"anonymous":"anon","hide_credentials":true,"realm":"api"}`,
			want: `{"anonymous":"anon","hide_credentials":true,"realm":"api"}`},
		{name: "empty anonymous is none", config: `{"anonymous":""}`, want: `{"anonymous":null,"hide_credentials":false,"realm":"service"}`},
		{name: "wrong type", config: `{"hide_credentials":"yes"}`, field: "hide_credentials", msg: "expected a boolean"},
		{name: "unknown field", config: `{"realms":"x"}`, field: "realms", msg: "unknown field"},
		{name: "realm not empty", config: `{"realm":""}`, field: "realm", msg: "length must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fields, err := reg.Validate(Name, json.RawMessage(tt.config))
			if tt.field != "" {
				if err == nil || fields[tt.field] != tt.msg {
					t.Fatalf("fields = %v (%v), want %s: %s", fields, err, tt.field, tt.msg)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	const unauthorized = `{"message":"Unauthorized"}`
	alice := map[string]string{"X-Consumer-Id": aliceID, "X-Consumer-Username": "alice", "X-Consumer-Custom-Id": "a-1",
		"X-Credential-Identifier": "alice", "X-Anonymous-Consumer": ""}
	tests := []struct {
		name, config  string
		header        map[string]string
		failLookup    error
		wantStatus    int // 0: passed on
		wantBody      string
		wantChallenge string // of a 401; "" means Basic realm="service"
		wantUp        map[string]string
		wantLookups   []string
	}{
		{name: "no header", config: `{}`, wantStatus: 401, wantBody: unauthorized, wantLookups: []string{}},
		{name: "realm", config: `{"realm":"api"}`, wantStatus: 401, wantBody: unauthorized, wantChallenge: `Basic realm="api"`},
		{name: "valid", config: `{}`, header: map[string]string{"Authorization": basic("alice:s3cret:with colon")},
			wantUp: alice, wantLookups: []string{"alice"}},
		{name: "lowercase scheme", config: `{}`, header: map[string]string{"Authorization": "basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret:with colon"))},
			wantUp: alice},
		{name: "unpadded base64", config: `{}`, header: map[string]string{"Authorization": "Basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:s3cret:with colon"))},
			wantUp: alice},
		{name: "empty password", config: `{}`, header: map[string]string{"Authorization": basic("empty:")},
			wantUp: map[string]string{"X-Consumer-Id": aliceID, "X-Credential-Identifier": "empty"}},
		{name: "wrong password", config: `{}`, header: map[string]string{"Authorization": basic("alice:nope")},
			wantStatus: 401, wantBody: unauthorized},
		{name: "unknown username", config: `{}`, header: map[string]string{"Authorization": basic("bob:x")},
			wantStatus: 401, wantBody: unauthorized, wantLookups: []string{"bob"}},
		{name: "no colon", config: `{}`, header: map[string]string{"Authorization": basic("alice")},
			wantStatus: 401, wantBody: unauthorized, wantLookups: []string{}},
		{name: "not base64", config: `{}`, header: map[string]string{"Authorization": "Basic !!!"},
			wantStatus: 401, wantBody: unauthorized, wantLookups: []string{}},
		{name: "another scheme", config: `{}`, header: map[string]string{"Authorization": "Bearer abc"},
			wantStatus: 401, wantBody: unauthorized, wantLookups: []string{}},
		{name: "credential of a deleted consumer", config: `{}`, header: map[string]string{"Authorization": basic("orphan:x")},
			wantStatus: 401, wantBody: unauthorized},
		{name: "proxy-authorization", config: `{}`, header: map[string]string{"Proxy-Authorization": basic("alice:s3cret:with colon")},
			wantUp: alice},
		{name: "proxy-authorization tried first, then authorization", config: `{}`,
			header: map[string]string{"Proxy-Authorization": basic("bob:x"), "Authorization": basic("alice:s3cret:with colon")},
			wantUp: alice, wantLookups: []string{"bob", "alice"}},
		{name: "hide credentials", config: `{"hide_credentials":true}`, header: map[string]string{"Authorization": basic("alice:s3cret:with colon")},
			wantUp: map[string]string{"X-Consumer-Id": aliceID, "Authorization": ""}},
		{name: "hide both headers", config: `{"hide_credentials":true}`,
			header: map[string]string{"Proxy-Authorization": basic("bob:x"), "Authorization": basic("alice:s3cret:with colon")},
			wantUp: map[string]string{"X-Consumer-Id": aliceID, "Authorization": "", "Proxy-Authorization": ""}},
		{name: "credentials kept", config: `{}`, header: map[string]string{"Authorization": basic("alice:s3cret:with colon")},
			wantUp: map[string]string{"Authorization": basic("alice:s3cret:with colon")}},
		{name: "spoofed headers replaced", config: `{}`,
			header: map[string]string{"Authorization": basic("alice:s3cret:with colon"), "X-Anonymous-Consumer": "true", "X-Consumer-Id": "mallory"},
			wantUp: map[string]string{"X-Consumer-Id": aliceID, "X-Anonymous-Consumer": ""}},
		{name: "anonymous", config: `{"anonymous":"anon"}`, header: map[string]string{"Authorization": basic("alice:nope")},
			wantUp: map[string]string{"X-Consumer-Id": "anon", "X-Consumer-Username": "anonymous", "X-Consumer-Custom-Id": "",
				"X-Credential-Identifier": "", "X-Anonymous-Consumer": "true"}},
		{name: "missing anonymous", config: `{"anonymous":"nobody"}`, wantStatus: 500,
			wantBody: `{"message":"anonymous consumer nobody is configured but doesn't exist"}`},
		{name: "lookup error", config: `{}`, header: map[string]string{"Authorization": basic("alice:x")},
			failLookup: errors.New("bad row"), wantStatus: 500, wantBody: `{"message":"An unexpected error occurred"}`},
		{name: "datastore unavailable", config: `{}`, header: map[string]string{"Authorization": basic("alice:x")},
			failLookup: fmt.Errorf("cache: cannot load: %w", store.ErrUnavailable), wantStatus: 503,
			wantBody: `{"message":"The database is unreachable; try again later"}`},
		{name: "datastore unavailable for anonymous", config: `{"anonymous":"anon"}`, failLookup: store.ErrUnavailable,
			wantStatus: 503, wantBody: `{"message":"The database is unreachable; try again later"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := newCreds()
			creds.err = tt.failLookup
			set, err := plugintest.NewSet(New(creds), tt.config)
			if err != nil {
				t.Fatal(err)
			}
			req := plugintest.New("GET", "/", tt.header, nil)
			c := req.Context()
			plugintest.Run(set, c)
			if tt.wantLookups != nil && strings.Join(creds.lookups, ",") != strings.Join(tt.wantLookups, ",") {
				t.Errorf("looked up %q, want %q", creds.lookups, tt.wantLookups)
			}
			resp, up := req.Response(), req.Upstream()
			if tt.wantStatus != 0 {
				ctype, _ := resp.Header("Content-Type")
				if req.Forwarded() || resp.Status() != tt.wantStatus || strings.TrimSpace(string(resp.Body())) != tt.wantBody || ctype != "application/json; charset=utf-8" {
					t.Fatalf("got forwarded=%v %d %s (%s)", req.Forwarded(), resp.Status(), resp.Body(), ctype)
				}
				challenge := tt.wantChallenge
				if challenge == "" {
					challenge = `Basic realm="service"`
				}
				if auth, _ := resp.Header("WWW-Authenticate"); (tt.wantStatus == 401) != (auth == challenge) {
					t.Fatalf("WWW-Authenticate = %q", auth)
				}
				if c.Consumer != nil {
					t.Fatalf("consumer %v authenticated on a %d", c.Consumer, tt.wantStatus)
				}
				return
			}
			if !req.Forwarded() {
				t.Fatalf("stopped: %d %s", resp.Status(), resp.Body())
			}
			for k, want := range tt.wantUp {
				if got, _ := up.Header(k); got != want {
					t.Errorf("upstream %s = %q, want %q", k, got, want)
				}
			}
			checkAuthenticated(t, c, up)
		})
	}
}

// TestLogicalOR checks that with anonymous set, a request an earlier auth
// plugin authenticated is left alone (Kong's "logical OR"), and without it
// basic-auth still requires its own credentials ("logical AND").
func TestLogicalOR(t *testing.T) {
	other := &entity.KeyAuthCredential{ID: "key-1", Consumer: &entity.Ref{ID: "bob"}}
	bob := &entity.Consumer{ID: "bob", Username: ptr("bob")}
	for _, tt := range []struct {
		config     string
		wantStatus int
	}{{`{"anonymous":"anon"}`, 0}, {`{}`, 401}} {
		creds := newCreds()
		set, err := plugintest.NewSet(New(creds), tt.config)
		if err != nil {
			t.Fatal(err)
		}
		req := plugintest.New("GET", "/", nil, nil)
		c := req.Context()
		c.Authenticate(bob, other, false)
		plugintest.Run(set, c)
		if status, _, _ := c.Exited(); status != tt.wantStatus {
			t.Fatalf("config %s: exit %d, want %d", tt.config, status, tt.wantStatus)
		}
		if tt.wantStatus == 0 && (c.Consumer != bob || len(creds.lookups) != 0) {
			t.Fatalf("config %s: consumer %v, lookups %v; want bob kept without lookups", tt.config, c.Consumer, creds.lookups)
		}
	}
}

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		header, user, pass string
		ok                 bool
	}{
		{"Basic " + enc("u:p"), "u", "p", true},
		{"  Basic   " + enc("u:p"), "u", "p", true},
		{"Basic" + enc("u:p"), "u", "p", true},
		{"xBasic " + enc("u:p"), "u", "p", true}, // Kong's pattern is not anchored
		{"Basic " + enc("u:"), "u", "", true},
		{"Basic " + enc("u:a:b"), "u", "a:b", true},
		{"Basic " + enc("::u:p"), "u", "p", true},
		{"Basic " + enc("u:p\nq"), "u", "p", true},
		{"Basic " + enc(":p"), "", "", false},
		{"Basic " + enc("u"), "", "", false},
		{"Basic ", "", "", false},
		{"BASIC " + enc("u:p"), "", "", false},
		{"Basic %%%", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		user, pass, ok := parseBasic(tt.header)
		if user != tt.user || pass != tt.pass || ok != tt.ok {
			t.Errorf("parseBasic(%q) = %q, %q, %v; want %q, %q, %v", tt.header, user, pass, ok, tt.user, tt.pass, tt.ok)
		}
	}
}

// checkAuthenticated checks that c's consumer and credential agree with
// the upstream headers. An anonymous consumer has a nil Credential, not a
// nil *entity.BasicAuthCredential in an interface.
func checkAuthenticated(t *testing.T, c *plugins.Context, up *plugintest.Upstream) {
	t.Helper()
	id, _ := up.Header("X-Consumer-Id")
	anon, _ := up.Header("X-Anonymous-Consumer")
	switch {
	case c.Consumer == nil || c.Consumer.ID != id || c.Anonymous != (anon == "true"):
		t.Fatalf("Context consumer %+v anonymous=%v; upstream %q anonymous=%q", c.Consumer, c.Anonymous, id, anon)
	case c.Anonymous && c.Credential != nil:
		t.Fatalf("anonymous with credential %#v", c.Credential)
	case !c.Anonymous && c.Credential == nil:
		t.Fatal("authenticated without a credential")
	}
}
