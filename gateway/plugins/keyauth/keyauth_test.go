package keyauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
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
		{name: "defaults", config: `{}`, want: `{"key_names":["apikey"],"key_in_header":true,"key_in_query":true,"key_in_body":false,"hide_credentials":false,"anonymous":null,"run_on_preflight":true}`},
		{name: "custom", config: `{"key_names":["x-key","k"],"anonymous":"anon","key_in_query":false}`, want: `{"key_names":["x-key","k"],"key_in_header":true,"key_in_query":false,"key_in_body":false,"hide_credentials":false,"anonymous":"anon","run_on_preflight":true}`},
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
	tests := []struct {
		name, config, method, target, body, ctype string
		header                                    map[string]string
		failLookup                                error
		wantStatus                                int // 0: passed on
		wantBody                                  string
		wantUp                                    map[string]string // upstream headers ("" = absent)
		wantQuery                                 string
		wantUpBody                                string
	}{
		{name: "no key", config: `{}`, target: "/", wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "bad key", config: `{}`, target: "/?apikey=nope", wantStatus: 401, wantBody: `{"message":"Invalid authentication credentials"}`},
		{name: "orphan credential", config: `{}`, target: "/?apikey=orphan", wantStatus: 401, wantBody: `{"message":"Invalid authentication credentials"}`},
		{name: "header key", config: `{}`, target: "/", header: map[string]string{"apikey": "secret"},
			wantUp: map[string]string{"X-Consumer-Id": "alice", "X-Consumer-Username": "alice", "X-Consumer-Custom-Id": "a-1", "X-Credential-Identifier": "cred-1", "X-Anonymous-Consumer": "", "Apikey": "secret"}},
		{name: "spoofed headers replaced", config: `{}`, target: "/?apikey=secret", header: map[string]string{"X-Anonymous-Consumer": "true", "X-Consumer-Id": "mallory"},
			wantUp: map[string]string{"X-Consumer-Id": "alice", "X-Anonymous-Consumer": ""}},
		{name: "query key hidden", config: `{"hide_credentials":true}`, target: "/?a=1&apikey=secret",
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantQuery: "a=1"},
		{name: "header key hidden", config: `{"hide_credentials":true,"key_names":["x-api-key"]}`, target: "/", header: map[string]string{"X-Api-Key": "secret"},
			wantUp: map[string]string{"X-Consumer-Id": "alice", "X-Api-Key": ""}},
		{name: "header disabled", config: `{"key_in_header":false}`, target: "/", header: map[string]string{"apikey": "secret"}, wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "query disabled", config: `{"key_in_query":false}`, target: "/?apikey=secret", wantStatus: 401, wantBody: `{"message":"No API key found in request"}`},
		{name: "form body", config: `{"key_in_body":true,"hide_credentials":true}`, method: "POST", target: "/", body: "apikey=secret&x=1", ctype: "application/x-www-form-urlencoded",
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantUpBody: "x=1"},
		{name: "json body", config: `{"key_in_body":true}`, method: "POST", target: "/", body: `{"apikey":"secret"}`, ctype: "application/json",
			wantUp: map[string]string{"X-Consumer-Id": "alice"}, wantUpBody: `{"apikey":"secret"}`},
		{name: "anonymous", config: `{"anonymous":"anon"}`, target: "/",
			wantUp: map[string]string{"X-Consumer-Id": "anon", "X-Anonymous-Consumer": "true", "X-Consumer-Username": "anonymous", "X-Credential-Identifier": ""}},
		{name: "missing anonymous", config: `{"anonymous":"nobody"}`, target: "/", wantStatus: 500, wantBody: `{"message":"An unexpected error occurred"}`},
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
			h, err := New(creds).Configure(json.RawMessage(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tt.target, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			c := &plugins.Context{W: rec, R: req}
			passed := h.Access(c)
			if tt.wantStatus != 0 {
				if passed || rec.Code != tt.wantStatus || strings.TrimSpace(rec.Body.String()) != tt.wantBody {
					t.Fatalf("got passed=%v %d %s", passed, rec.Code, rec.Body.String())
				}
				if tt.wantStatus == 401 && rec.Header().Get("WWW-Authenticate") != `Key realm="kong"` {
					t.Fatalf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
				}
				return
			}
			if !passed {
				t.Fatalf("stopped: %d %s", rec.Code, rec.Body.String())
			}
			for k, want := range tt.wantUp {
				if got := req.Header.Get(k); got != want {
					t.Errorf("upstream %s = %q, want %q", k, got, want)
				}
			}
			if tt.wantQuery != "" && req.URL.RawQuery != tt.wantQuery {
				t.Errorf("query = %q, want %q", req.URL.RawQuery, tt.wantQuery)
			}
			if tt.wantUpBody != "" {
				b, _ := io.ReadAll(req.Body)
				if string(b) != tt.wantUpBody || req.ContentLength != int64(len(b)) {
					t.Errorf("upstream body = %q (len %d), want %q", b, req.ContentLength, tt.wantUpBody)
				}
			}
		})
	}
}
