package keyauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
	"github.com/sluice-gw/sluice/gateway/store"
)

// memCredentials is an in-memory Credentials.
type memCredentials struct {
	mu        sync.Mutex
	creds     map[string]*entity.KeyAuthCredential
	consumers map[string]*entity.Consumer
	err       error
}

func (m *memCredentials) Credential(_ context.Context, key string) (*entity.KeyAuthCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.creds[key], m.err
}

func (m *memCredentials) Consumer(_ context.Context, id string) (*entity.Consumer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consumers[id], m.err
}

func ptr(s string) *string { return &s }

func newCreds() *memCredentials {
	return &memCredentials{
		creds: map[string]*entity.KeyAuthCredential{
			"secret": {ID: "cred-1", Key: "secret", Consumer: &entity.Ref{ID: "alice"}},
			"orphan": {ID: "cred-2", Key: "orphan", Consumer: &entity.Ref{ID: "ghost"}},
			// ttl: one ran out a second ago, one has an hour left.
			"expired": {ID: "cred-3", Key: "expired", Consumer: &entity.Ref{ID: "alice"}, ExpiresAt: time.Now().UnixMilli() - 1000},
			"fresh":   {ID: "cred-4", Key: "fresh", Consumer: &entity.Ref{ID: "alice"}, ExpiresAt: time.Now().UnixMilli() + 3600_000},
		},
		consumers: map[string]*entity.Consumer{
			"alice": {ID: "alice", Username: ptr("alice"), CustomID: ptr("a-1")},
			"anon":  {ID: "anon", Username: ptr("anonymous")},
		},
	}
}

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New(nil))
	tests := []struct {
		name, config, want string
		fields             map[string]string
	}{
		{name: "defaults", config: `{}`, want: `{"key_names":["apikey"],"key_in_header":true,"key_in_query":true,"key_in_body":false,"hide_credentials":false,"anonymous":null,"run_on_preflight":true,"realm":null}`},
		{name: "custom", config: `{"key_names":["x-key","k"],"anonymous":"anon","key_in_query":false}`, want: `{"key_names":["x-key","k"],"key_in_header":true,"key_in_query":false,"key_in_body":false,"hide_credentials":false,"anonymous":"anon","run_on_preflight":true,"realm":null}`},
		{name: "empty names", config: `{"key_names":[]}`, fields: map[string]string{"key_names": "length must be at least 1"}},
		{name: "bad name", config: `{"key_names":["a b"]}`, fields: map[string]string{"key_names": "bad header name 'a b', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}},
		{name: "wrong type", config: `{"hide_credentials":"yes"}`, fields: map[string]string{"hide_credentials": "expected a boolean"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fields, err := reg.Validate(Name, json.RawMessage(tt.config))
			if tt.fields != nil {
				if err == nil || len(fields) != len(tt.fields) || fields[firstKey(tt.fields)] != tt.fields[firstKey(tt.fields)] {
					t.Fatalf("fields = %v, want %v", fields, tt.fields)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func TestAccess(t *testing.T) {
	big := "apikey=secret&x=" + strings.Repeat("a", 2<<20) // 2 MiB and a bit
	atLimit := "apikey=secret&x=" + strings.Repeat("a", maxBody-len("apikey=secret&x="))
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name, config, method, target, body string
		header                             map[string]string
		failLookup, failBody               error
		wantStatus                         int // 0: passed on
		wantBody                           string
		wantUp                             map[string]string // upstream headers ("" = absent)
		wantQuery                          string
		wantUpBody                         *string // nil: the client's body, untouched
		wantReads                          int     // calls to Request.Body
		wantChallenge                      string  // WWW-Authenticate of a 401; "" means Key realm="kong"
	}{
		{name: "expired ttl", config: `{}`, target: "/?apikey=expired", wantStatus: 401, wantBody: `{"message":"Invalid authentication credentials"}`},
		{name: "ttl left", config: `{}`, target: "/?apikey=fresh", wantUp: map[string]string{"X-Credential-Identifier": "cred-4"}},
		{name: "realm", config: `{"realm":"api"}`, target: "/", wantStatus: 401, wantBody: `{"message":"No API key found in request"}`,
			wantChallenge: `Key realm="api"`},
		{name: "no key", config: `{}`, target: "/", wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "bad key", config: `{}`, target: "/?apikey=nope", wantStatus: 401, wantBody: `{"message":"Invalid authentication credentials"}`},
		{name: "orphan credential", config: `{}`, target: "/?apikey=orphan", wantStatus: 401, wantBody: `{"message":"Invalid authentication credentials"}`},
		{name: "header key", config: `{}`, target: "/", header: map[string]string{"apikey": "secret"},
			wantUp: map[string]string{"X-Consumer-Id": "alice", "X-Consumer-Username": "alice", "X-Consumer-Custom-Id": "a-1", "X-Credential-Identifier": "cred-1", "X-Anonymous-Consumer": "", "Apikey": "secret"}},
		{name: "header name case-insensitive", config: `{"key_names":["X-API-KEY"]}`, target: "/", header: map[string]string{"x-api-key": "secret"},
			wantUp: map[string]string{"X-Consumer-Id": "alice"}},
		{name: "spoofed headers replaced", config: `{}`, target: "/?apikey=secret", header: map[string]string{"X-Anonymous-Consumer": "true", "X-Consumer-Id": "mallory"},
			wantUp: map[string]string{"X-Consumer-Id": "alice", "X-Anonymous-Consumer": ""}},
		{name: "query key hidden", config: `{"hide_credentials":true}`, target: "/?a=1&apikey=secret",
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantQuery: "a=1"},
		{name: "query key hidden, others kept as sent", config: `{"hide_credentials":true}`, target: "/?b=%41&apikey=secret&a=1&apikey=again",
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantQuery: "b=%41&a=1"},
		{name: "query key kept", config: `{}`, target: "/?a=1&apikey=secret", wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantQuery: "a=1&apikey=secret"},
		{name: "header key hidden", config: `{"hide_credentials":true,"key_names":["x-api-key"]}`, target: "/", header: map[string]string{"X-Api-Key": "secret"},
			wantUp: map[string]string{"X-Consumer-Id": "alice", "X-Api-Key": ""}},
		{name: "header disabled", config: `{"key_in_header":false}`, target: "/", header: map[string]string{"apikey": "secret"}, wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "query disabled", config: `{"key_in_query":false}`, target: "/?apikey=secret", wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "form body", config: `{"key_in_body":true,"hide_credentials":true}`, method: "POST", target: "/", body: "apikey=secret&x=1", header: form,
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantUpBody: ptr("x=1"), wantReads: 1},
		{name: "form body, others kept as sent", config: `{"key_in_body":true,"hide_credentials":true}`, method: "POST", target: "/", body: "b=%41+&apikey=secret&&a=1",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantUpBody: ptr("b=%41+&&a=1"), wantReads: 1},
		{name: "form body kept", config: `{"key_in_body":true}`, method: "POST", target: "/", body: "apikey=secret&x=1", header: form,
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantReads: 1},
		{name: "chunked form body", config: `{"key_in_body":true}`, method: "POST", target: "/", body: "apikey=secret",
			header:    map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"},
			wantUp:    map[string]string{"X-Consumer-Id": "alice"},
			wantReads: 1},
		{name: "json body", config: `{"key_in_body":true}`, method: "POST", target: "/", body: `{"apikey":"secret"}`, header: map[string]string{"Content-Type": "application/json"},
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantReads: 1},
		{name: "json body hidden", config: `{"key_in_body":true,"hide_credentials":true}`, method: "POST", target: "/", body: `{"z": [1, 2], "apikey":"secret"}`,
			header: map[string]string{"Content-Type": "application/json"}, wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantUpBody: ptr(`{"z":[1,2]}`), wantReads: 1},
		{name: "json key not a string", config: `{"key_in_body":true}`, method: "POST", target: "/", body: `{"apikey":1}`, header: map[string]string{"Content-Type": "application/json"},
			wantStatus: 401, wantBody: `{"message":"No API key found in request"}`, wantReads: 1},
		{name: "body of another type left unread", config: `{"key_in_body":true}`, method: "POST", target: "/", body: "apikey=secret", header: map[string]string{"Content-Type": "text/plain"},
			wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "no body left unread", config: `{"key_in_body":true}`, method: "POST", target: "/", header: form,
			wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "header key first, body unread", config: `{"key_in_body":true}`, method: "POST", target: "/", body: big, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "apikey": "secret"},
			wantUp: map[string]string{"X-Consumer-Id": "alice"}},
		{name: "body at the limit", config: `{"key_in_body":true,"hide_credentials":true}`, method: "POST", target: "/", body: atLimit, header: form,
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantUpBody: ptr(atLimit[len("apikey=secret&"):]), wantReads: 1},
		{name: "body over the limit", config: `{"key_in_body":true,"hide_credentials":true}`, method: "POST", target: "/", body: big, header: form, wantReads: 1,
			wantStatus: 413, wantBody: `{"message":"Request body too large for key-auth key_in_body: it reads at most 1 MiB"}`},
		{name: "client body broken", config: `{"key_in_body":true}`, method: "POST", target: "/", body: "apikey=secret", header: form, wantReads: 1,
			failBody: fmt.Errorf("proxy: client closed early: %w", plugins.ErrClientBody), wantStatus: 400, wantBody: `{"message":"Bad request"}`},
		{name: "body read fails", config: `{"key_in_body":true}`, method: "POST", target: "/", body: "apikey=secret", header: form, wantReads: 1,
			failBody: errors.New("proxy: cannot spool"), wantStatus: 500, wantBody: `{"message":"An unexpected error occurred"}`},
		{name: "anonymous", config: `{"anonymous":"anon"}`, target: "/",
			wantUp: map[string]string{"X-Consumer-Id": "anon", "X-Anonymous-Consumer": "true", "X-Consumer-Username": "anonymous", "X-Consumer-Custom-Id": "", "X-Credential-Identifier": ""}},
		{name: "missing anonymous", config: `{"anonymous":"nobody"}`, target: "/", wantStatus: 500, wantBody: `{"message":"anonymous consumer nobody is configured but doesn't exist"}`},
		{name: "lookup error", config: `{}`, target: "/?apikey=secret", failLookup: errors.New("bad row"), wantStatus: 500, wantBody: `{"message":"An unexpected error occurred"}`},
		{name: "datastore unavailable", config: `{}`, target: "/?apikey=secret", failLookup: fmt.Errorf("cache: cannot load: %w", store.ErrUnavailable),
			wantStatus: 503, wantBody: `{"message":"The database is unreachable; try again later"}`},
		{name: "datastore unavailable for anonymous", config: `{"anonymous":"anon"}`, target: "/", failLookup: store.ErrUnavailable,
			wantStatus: 503, wantBody: `{"message":"The database is unreachable; try again later"}`},
		{name: "preflight skipped", config: `{"run_on_preflight":false}`, method: "OPTIONS", target: "/", wantUp: map[string]string{"X-Consumer-Id": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := newCreds()
			creds.err = tt.failLookup
			set, err := plugintest.NewSet(New(creds), tt.config)
			if err != nil {
				t.Fatal(err)
			}
			req := plugintest.New(tt.method, tt.target, tt.header, []byte(tt.body))
			if tt.failBody != nil {
				req.FailBody(tt.failBody)
			}
			c := req.Context()
			plugintest.Run(set, c)
			if req.BodyReads() != tt.wantReads {
				t.Errorf("Body called %d times, want %d", req.BodyReads(), tt.wantReads)
			}
			up := req.Upstream()
			wantUpBody := tt.body
			if tt.wantUpBody != nil {
				wantUpBody = *tt.wantUpBody
			}
			if string(up.Body()) != wantUpBody {
				t.Errorf("upstream body (len %d) differs from %q (len %d)", len(up.Body()), trunc(wantUpBody), len(wantUpBody))
			}
			if cl, ok := up.Header("Content-Length"); (ok || tt.wantUpBody != nil) && cl != strconv.Itoa(len(up.Body())) {
				t.Errorf("upstream Content-Length %q for a body of %d bytes", cl, len(up.Body()))
			}
			resp := req.Response()
			if tt.wantStatus != 0 {
				ctype, _ := resp.Header("Content-Type")
				if req.Forwarded() || resp.Status() != tt.wantStatus || strings.TrimSpace(string(resp.Body())) != tt.wantBody || ctype != "application/json; charset=utf-8" {
					t.Fatalf("got forwarded=%v %d %s (%s)", req.Forwarded(), resp.Status(), resp.Body(), ctype)
				}
				challenge := tt.wantChallenge
				if challenge == "" {
					challenge = `Key realm="kong"`
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
			if tt.wantQuery != "" && up.RawQuery() != tt.wantQuery {
				t.Errorf("query = %q, want %q", up.RawQuery(), tt.wantQuery)
			}
			checkAuthenticated(t, c, up)
		})
	}
}

// checkAuthenticated checks that c's consumer and credential agree with
// the upstream headers. An anonymous consumer has a nil Credential, not a
// nil *entity.KeyAuthCredential in an interface.
func checkAuthenticated(t *testing.T, c *plugins.Context, up *plugintest.Upstream) {
	t.Helper()
	id, _ := up.Header("X-Consumer-Id")
	credID, _ := up.Header("X-Credential-Identifier")
	anon, _ := up.Header("X-Anonymous-Consumer")
	switch {
	case id == "":
		if c.Consumer != nil || c.Credential != nil {
			t.Fatalf("Context has %v, %v; no consumer upstream", c.Consumer, c.Credential)
		}
	case c.Consumer == nil || c.Consumer.ID != id || c.Anonymous != (anon == "true"):
		t.Fatalf("Context consumer %+v anonymous=%v; upstream %q anonymous=%q", c.Consumer, c.Anonymous, id, anon)
	case c.Anonymous && c.Credential != nil:
		t.Fatalf("anonymous with credential %#v", c.Credential)
	case !c.Anonymous && (c.Credential == nil || c.Credential.PrimaryKey() != credID):
		t.Fatalf("credential %v, upstream %q", c.Credential, credID)
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
