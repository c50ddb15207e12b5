package requesttermination

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-gw/sluice/gateway/plugins"
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
			h, err := New().Configure(json.RawMessage(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			rec := httptest.NewRecorder()
			if h.Access(&plugins.Context{W: rec, R: httptest.NewRequest(method, "/", nil)}) {
				t.Fatal("Access let the request through")
			}
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != tt.ctype || rec.Body.String() != tt.body {
				t.Fatalf("got %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
			}
		})
	}
}
