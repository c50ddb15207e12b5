package plugins_test

import (
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

func TestContextExit(t *testing.T) {
	tests := []struct {
		name       string
		exit       func(c *plugins.Context)
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{name: "exit", exit: func(c *plugins.Context) { c.Exit(200, []byte("hi"), "Content-Type", "text/plain", "X-A", "1") },
			wantStatus: 200, wantBody: "hi", wantHeader: map[string]string{"Content-Type": "text/plain", "X-A": "1"}},
		{name: "odd header list", exit: func(c *plugins.Context) { c.Exit(204, nil, "X-A", "1", "X-Dangling") },
			wantStatus: 204, wantHeader: map[string]string{"X-A": "1", "X-Dangling": ""}},
		{name: "message", exit: func(c *plugins.Context) { c.ExitMessage(401, `say "hi"`, "WWW-Authenticate", "Key") },
			wantStatus: 401, wantBody: "{\"message\":\"say \\\"hi\\\"\"}\n",
			wantHeader: map[string]string{"Content-Type": "application/json; charset=utf-8", "WWW-Authenticate": "Key"}},
		{name: "message content type overridden", exit: func(c *plugins.Context) { c.ExitMessage(500, "x", "Content-Type", "application/problem+json") },
			wantStatus: 500, wantBody: "{\"message\":\"x\"}\n", wantHeader: map[string]string{"Content-Type": "application/problem+json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := plugintest.New(http.MethodGet, "/", nil, nil).Context()
			if _, _, ok := c.Exited(); ok {
				t.Fatal("Exited before Exit")
			}
			tt.exit(c)
			status, body, ok := c.Exited()
			if !ok || status != tt.wantStatus || string(body) != tt.wantBody {
				t.Fatalf("Exited() = %d %q %v", status, body, ok)
			}
			for k, want := range tt.wantHeader {
				if got, _ := c.Response.Header(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestContextAuthenticateAndReset(t *testing.T) {
	c := &plugins.Context{ClientIP: "ip"}
	consumer, cred := &entity.Consumer{ID: "c"}, &entity.KeyAuthCredential{ID: "k"}
	c.Authenticate(consumer, cred, false)
	c.Set(hiKey{}, "v")
	if c.Consumer != consumer || c.Credential != cred || c.Anonymous {
		t.Fatalf("after Authenticate: %+v", c)
	}
	c.Reset()
	if _, _, exited := c.Exited(); exited || c.Consumer != nil || c.Credential != nil || c.ClientIP != "" || c.Get(hiKey{}) != nil {
		t.Fatalf("after Reset: %+v, value %v", c, c.Get(hiKey{}))
	}
}

func TestContextSetGet(t *testing.T) {
	var c plugins.Context
	c.Set(hiKey{}, 1)
	c.Set(loKey{}, 2)
	c.Set(hiKey{}, 3) // replaces
	if c.Get(hiKey{}) != 3 || c.Get(loKey{}) != 2 || c.Get(sharedKey{}) != nil {
		t.Fatalf("Get = %v %v %v", c.Get(hiKey{}), c.Get(loKey{}), c.Get(sharedKey{}))
	}
}

func TestContextValuesReuseStorage(t *testing.T) {
	var c plugins.Context
	v := new(int)
	allocs := testing.AllocsPerRun(100, func() {
		c.Set(hiKey{}, v)
		c.Set(loKey{}, v)
		c.Set(sharedKey{}, v)
		_ = c.Get(loKey{})
		c.Reset()
	})
	if allocs != 0 {
		t.Fatalf("a pooled Context allocates %v times per request for three values", allocs)
	}
}
