package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	"github.com/sluice-gw/sluice/gateway/plugins/ratelimiting"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttermination"
)

// memCredentials is an in-memory keyauth.Credentials.
type memCredentials struct {
	creds     map[string]*entity.KeyAuthCredential
	consumers map[string]*entity.Consumer
}

func (m memCredentials) Credential(_ context.Context, key string) (*entity.KeyAuthCredential, error) {
	return m.creds[key], nil
}

func (m memCredentials) Consumer(_ context.Context, id string) (*entity.Consumer, error) {
	return m.consumers[id], nil
}

func testCredentials() memCredentials {
	name := "alice"
	return memCredentials{
		creds:     map[string]*entity.KeyAuthCredential{"k1": {ID: "cred-1", Key: "k1", Consumer: &entity.Ref{ID: "c-alice"}}},
		consumers: map[string]*entity.Consumer{"c-alice": {ID: "c-alice", Username: &name}},
	}
}

func pluginEntity(id, name, route, consumer, config string) *entity.Plugin {
	p := &entity.Plugin{ID: id, Name: name, Enabled: true, Config: json.RawMessage(config)}
	if route != "" {
		p.Route = &entity.Ref{ID: route}
	}
	if consumer != "" {
		p.Consumer = &entity.Ref{ID: consumer}
	}
	return p
}

func TestPluginsEndToEnd(t *testing.T) {
	up := echo(t)
	svc := serviceFor(t, up.URL)
	reg := plugins.NewRegistry(keyauth.New(testCredentials()), ratelimiting.New(), requesttermination.New())
	p, gw := gateway(t, Options{},
		route("auth", []string{"/auth"}, true, svc),
		route("limited", []string{"/limited"}, true, svc),
		route("closed", []string{"/closed"}, true, svc),
		route("open", []string{"/open"}, true, svc),
	)
	set, err := plugins.NewSet(reg, []*entity.Plugin{
		pluginEntity("1", "key-auth", "auth", "", `{"hide_credentials":true}`),
		pluginEntity("2", "rate-limiting", "auth", "", `{"minute":100}`),
		// alice gets a stricter limit on the auth route: resolved after key-auth ran.
		pluginEntity("3", "rate-limiting", "auth", "c-alice", `{"minute":1}`),
		pluginEntity("4", "rate-limiting", "limited", "", `{"minute":1,"limit_by":"ip"}`),
		pluginEntity("5", "request-termination", "closed", "", `{"status_code":403,"message":"closed"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.SetPlugins(set)
	tests := []struct {
		name, path, apikey string
		status             int
		body               string // substring of the response body
		header             map[string]string
	}{
		{name: "no key", path: "/auth/x", status: 401, body: `"No API key found in request"`, header: map[string]string{"WWW-Authenticate": `Key realm="kong"`}},
		{name: "bad key", path: "/auth/x", apikey: "nope", status: 401, body: `"Invalid authentication credentials"`},
		{name: "good key", path: "/auth/x", apikey: "k1", status: 200, body: `"X-Consumer-Username":["alice"]`,
			header: map[string]string{"X-RateLimit-Limit-Minute": "1", "X-RateLimit-Remaining-Minute": "0"}},
		{name: "consumer limit", path: "/auth/x", apikey: "k1", status: 429, body: `"API rate limit exceeded"`},
		{name: "ip limit first", path: "/limited", status: 200},
		{name: "ip limit second", path: "/limited", status: 429, body: `"API rate limit exceeded"`},
		{name: "terminated", path: "/closed", status: 403, body: `{"message":"closed"}`},
		{name: "no plugins", path: "/open", status: 200, header: map[string]string{"X-RateLimit-Limit-Minute": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, gw.URL+tt.path, nil)
			if tt.apikey != "" {
				req.Header.Set("apikey", tt.apikey)
			}
			resp, body := get(t, req)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			for k, v := range tt.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.status == 200 && strings.Contains(body, `"Apikey"`) {
				t.Errorf("hide_credentials left the key in the upstream request: %s", body)
			}
		})
	}
}

// TestKeyInBodyOverTheMemoryBuffer has key-auth find its key at the end of
// a form body larger than the memory buffer (the body is spooled, then
// read back for the plugin): the key is found and the upstream gets the
// whole body.
func TestKeyInBodyOverTheMemoryBuffer(t *testing.T) {
	up := echo(t)
	auth := route("auth", []string{"/auth"}, true, serviceFor(t, up.URL))
	auth.Route.RequestBuffering = true
	p, gw := gateway(t, Options{BodyBufferSize: 1 << 10}, auth)
	set, err := plugins.NewSet(plugins.NewRegistry(keyauth.New(testCredentials())),
		[]*entity.Plugin{pluginEntity("1", "key-auth", "auth", "", `{"key_in_body":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	p.SetPlugins(set)
	body := "pad=" + strings.Repeat("x", 64<<10) + "&apikey=k1"
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/auth", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, got := get(t, req)
	if resp.StatusCode != 200 || !strings.Contains(got, `"X-Consumer-Username":["alice"]`) {
		t.Fatalf("got %d %.200s", resp.StatusCode, got)
	}
	var e echoed
	if err := json.Unmarshal([]byte(got), &e); err != nil || e.Body != body {
		t.Fatalf("upstream got %d bytes, want the %d sent (%v)", len(e.Body), len(body), err)
	}
}
