package admin

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
)

func TestDecodeForm(t *testing.T) {
	tests := []struct {
		name, kind, body, want string
	}{
		{"dotted record", "plugins", "name=rate-limiting&config.minute=5&config.policy=local",
			`{"config":{"minute":5,"policy":"local"},"name":"rate-limiting"}`},
		{"foreign id", "routes", "service.id=0b6e0a3c-3a11-4c6a-9d55-5a8f0c2f1a01",
			`{"service":{"id":"0b6e0a3c-3a11-4c6a-9d55-5a8f0c2f1a01"}}`},
		{"empty foreign id is null", "routes", "service.id=", `{"service":null}`},
		{"appended array", "routes", "paths[]=/a&paths[]=/b", `{"paths":["/a","/b"]}`},
		{"indexed array", "routes", "paths[2]=/b&paths[1]=/a", `{"paths":["/a","/b"]}`},
		{"repeated key", "routes", "paths=/a&paths=/b", `{"paths":["/a","/b"]}`},
		{"single value set", "routes", "methods=GET", `{"methods":["GET"]}`},
		{"headers", "routes", "headers.x-foo=bar&headers.x-baz[]=1&headers.x-baz[]=2",
			`{"headers":{"x-baz":["1","2"],"x-foo":["bar"]}}`},
		{"integers and booleans", "services", "port=8080&enabled=false&retries=0",
			`{"enabled":false,"port":8080,"retries":0}`},
		{"empty value is null", "services", "name=&path=", `{"name":null,"path":null}`},
		{"config arrays", "plugins", "config.key_names[]=apikey&config.key_names[]=x-key",
			`{"config":{"key_names":["apikey","x-key"]}}`},
		{"config inference", "plugins", "config.a=true&config.b=1.5&config.c=text&config.d=",
			`{"config":{"a":true,"b":1.5,"c":"text","d":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := decodeForm(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			norm, err := normalize(entity.Kind(tt.kind), obj, true)
			if err != nil {
				t.Fatalf("normalize: %v", err)
			}
			got, err := json.Marshal(norm)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDecodeFormErrors(t *testing.T) {
	tests := []struct {
		name, body, field, want string
	}{
		{"conflicting keys", "paths=/a&paths[]=/b", "paths[]", "conflicting"},
		{"unclosed bracket", "paths[=/a", "paths[", "invalid form key"},
		{"zero index", "paths[0]=/a", "paths[0]", "invalid form key"},
		{"leading bracket", "[1]=x", "[1]", "invalid form key"},
		{"empty segment", "config..a=1", "config..a", "invalid form key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeForm(tt.body)
			ae, ok := err.(*apiError)
			if !ok || ae.status != http.StatusBadRequest {
				t.Fatalf("err %v, want a 400", err)
			}
			fields := ae.body.(kongError).Fields
			if msg, _ := fields[tt.field].(string); !strings.Contains(msg, tt.want) {
				t.Fatalf("fields %v, want %s: %s", fields, tt.field, tt.want)
			}
		})
	}
}

func TestMultipartBody(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, kv := range [][2]string{{"name", "mp"}, {"paths[1]", "/m"}, {"paths[2]", "/n"}, {"strip_path", "false"}} {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	out := e.must(201, "POST", "/routes", mw.FormDataContentType(), buf.String())
	if p := out["paths"].([]any); len(p) != 2 || p[1] != "/n" || out["strip_path"] != false {
		t.Fatalf("route %v", out)
	}
	e.must(400, "POST", "/routes", "multipart/form-data", "x")
}

func TestNormalizeJSON(t *testing.T) {
	tests := []struct {
		name, kind, body, want string
	}{
		{"integral float", "services", `{"port":80.0}`, `{"port":80}`},
		{"header string", "routes", `{"headers":{"x-a":"b"}}`, `{"headers":{"x-a":["b"]}}`},
		{"kong-only field unset", "services", `{"tls_verify":null,"ca_certificates":[],"host":"h"}`, `{"host":"h"}`},
		{"null passes through", "routes", `{"name":null}`, `{"name":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := decodeJSON([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			norm, err := normalize(entity.Kind(tt.kind), obj, false)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(norm)
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// FuzzDecodeBody sends arbitrary JSON and form bodies to every writable
// collection: the answer is never a 5xx and always a JSON body.
func FuzzDecodeBody(f *testing.F) {
	seeds := []struct {
		form bool
		body string
	}{
		{false, `{"name":"s","url":"http://example.com/x"}`},
		{false, `{"paths":["~/v[0-9]+"],"hosts":["*.a.com"],"headers":{"x":["y"]}}`},
		{false, `{"name":"rate-limiting","config":{"minute":5}}`},
		{false, `{"port":1e400,"retries":-1,"tags":[1,2],"service":{"id":null}}`},
		{false, `{"config":{"a":{"b":[1,{"c":null}]}}}`},
		{true, "name=x&url=https://h:99999/p"},
		{true, "paths[1]=/a&paths[3]=/b&methods[]=GET&headers.x-a[]=b"},
		{true, "config.minute=5&config.key_names=apikey&name=key-auth"},
		{true, "a[1].b[2].c=1&a[1].b[]=x&service.id=&ttl=5"},
		{true, "%zz=1&=&&[=]"},
		{false, `{"paths":["/a"],"service":{"name":"s","id":null},"snis":["x.com"],"protocols":["https"]}`},
		{false, `{"name":"rate-limiting","instance_name":"i","config":{"year":1,"limit_by":"header","policy":"redis"}}`},
		{true, "service.name=s&consumer.username=u&port=1e-400"},
	}
	for _, s := range seeds {
		f.Add(s.form, s.body)
	}
	st := newStore(f)
	h := New(Options{Store: st, Plugins: testRegistry(), Cluster: &recorder{}})
	paths := []string{"/services", "/routes", "/consumers", "/plugins", "/schemas/routes/validate", "/schemas/plugins/validate"}
	f.Fuzz(func(t *testing.T, form bool, body string) {
		ct := "application/json"
		if form {
			ct = "application/x-www-form-urlencoded"
		}
		for _, p := range paths {
			for _, method := range []string{"POST", "PUT"} {
				target := p
				if method == "PUT" {
					target += "/fuzzed"
				}
				req := httptest.NewRequest(method, target, strings.NewReader(body))
				req.Header.Set("Content-Type", ct)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code >= 500 {
					t.Fatalf("%s %s %q (%s): %d %s", method, target, body, ct, w.Code, w.Body)
				}
				if !json.Valid(w.Body.Bytes()) {
					t.Fatalf("%s %s %q: invalid JSON answer %q", method, target, body, w.Body)
				}
			}
		}
	})
}
