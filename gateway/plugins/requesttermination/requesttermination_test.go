package requesttermination

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New())
	tests := []struct {
		name, config, want string
		field, msg         string
	}{
		{name: "defaults", config: ``, want: `{"status_code":503,"message":null,"body":null,"content_type":null}`},
		{name: "message", config: `{"status_code":403,"message":"go away"}`, want: `{"status_code":403,"message":"go away","body":null,"content_type":null}`},
		{name: "status range", config: `{"status_code":600}`, field: "status_code", msg: "value should be between 100 and 599"},
		{name: "status type", config: `{"status_code":"x"}`, field: "status_code", msg: "expected an integer"},
		{name: "message and body", config: `{"message":"a","body":"b"}`, field: "@entity", msg: "message cannot be used with content_type or body"},
		{name: "content type alone", config: `{"content_type":"text/plain"}`, field: "@entity", msg: "content_type requires a body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fields, err := reg.Validate(Name, json.RawMessage(tt.config))
			if tt.field != "" {
				if err == nil || fields[tt.field] != tt.msg {
					t.Fatalf("fields = %v, want %s: %s", fields, tt.field, tt.msg)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	tests := []struct {
		name, config, method string
		status               int
		ctype, body          string
	}{
		{name: "default", config: `{}`, status: 503, ctype: "application/json; charset=utf-8", body: "{\"message\":\"Service unavailable\"}\n"},
		{name: "message", config: `{"status_code":418,"message":"teapot \"x\""}`, status: 418, ctype: "application/json; charset=utf-8", body: "{\"message\":\"teapot \\\"x\\\"\"}\n"},
		{name: "body", config: `{"status_code":200,"body":"<h1>hi</h1>","content_type":"text/html"}`, status: 200, ctype: "text/html", body: "<h1>hi</h1>"},
		{name: "head has no body", config: `{"status_code":404}`, method: http.MethodHead, status: 404, ctype: "application/json; charset=utf-8", body: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := plugintest.NewSet(New(), tt.config)
			if err != nil {
				t.Fatal(err)
			}
			req := plugintest.New(tt.method, "/", nil, nil)
			plugintest.Run(set, req.Context())
			resp := req.Response()
			ctype, _ := resp.Header("Content-Type")
			if req.Forwarded() || resp.Status() != tt.status || ctype != tt.ctype || string(resp.Body()) != tt.body {
				t.Fatalf("got forwarded=%v %d %q %q", req.Forwarded(), resp.Status(), ctype, resp.Body())
			}
			if _, b, _ := req.Context().Exited(); len(b) == 0 {
				t.Fatal("the plugin exited without a body: dropping a HEAD body is the engine's job")
			}
		})
	}
}
