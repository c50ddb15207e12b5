package requesttransformer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

func run(t *testing.T, config, method, target string, header map[string]string, body []byte) *plugintest.Request {
	t.Helper()
	set, err := plugintest.NewSet(New(), config)
	if err != nil {
		t.Fatalf("config %s: %v", config, err)
	}
	req := plugintest.New(method, target, header, body)
	plugintest.Run(set, req.Context())
	return req
}

func TestHeaders(t *testing.T) {
	cfg := `{"remove":{"headers":["x-gone","host"]},
		"rename":{"headers":["x-old:x-new"]},
		"replace":{"headers":["x-rep:replaced","x-absent:nope"]},
		"add":{"headers":["x-added:a","x-rep:not-added","x-tmpl:v=$(headers.x_src)/$(query_params.q)/$(headers[\"x-none\"] or 'dflt')"]},
		"append":{"headers":["x-app:two","x-new:more"]}}`
	req := run(t, cfg, "GET", "/p?q=1", map[string]string{"X-Gone": "1", "X-Old": "o", "X-Rep": "r", "X-App": "one", "X-Src": "s"}, nil)
	up := req.Upstream()
	if _, ok := up.Header("X-Gone"); ok {
		t.Error("x-gone not removed")
	}
	if _, ok := up.Header("Host"); !ok {
		t.Error("host removed; Kong never removes it")
	}
	if _, ok := up.Header("X-Old"); ok {
		t.Error("x-old still there after rename")
	}
	checks := map[string][]string{
		"X-New":    {"o", "more"},
		"X-Rep":    {"replaced"},
		"X-Absent": nil,
		"X-Added":  {"a"},
		"X-Tmpl":   {"v=s/1/dflt"},
		"X-App":    {"one", "two"},
	}
	for name, want := range checks {
		if got := up.Values(name); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !req.Forwarded() {
		t.Error("request not forwarded")
	}
}

func TestQuery(t *testing.T) {
	cfg := `{"remove":{"querystring":["gone"]},
		"rename":{"querystring":["old:new"]},
		"replace":{"querystring":["rep:x y","absent:no"]},
		"add":{"querystring":["added:$(headers.x_a)","rep:not"]},
		"append":{"querystring":["app:2"]}}`
	req := run(t, cfg, "GET", "/p?gone=1&old=o&rep=r&rep=r2&app=1&flag&z=%2F", map[string]string{"X-A": "hv"}, nil)
	want := "added=hv&app=1&app=2&flag&new=o&rep=x%20y&z=%2F"
	if got := req.Upstream().RawQuery(); got != want {
		t.Errorf("query = %q, want %q", got, want)
	}
	// No query rules: the query is sent as the client wrote it.
	req = run(t, `{"add":{"headers":["a:b"]}}`, "GET", "/p?b=2&a=1", nil, nil)
	if got := req.Upstream().RawQuery(); got != "b=2&a=1" {
		t.Errorf("untouched query = %q", got)
	}
}

func TestJSONBody(t *testing.T) {
	cfg := `{"remove":{"body":["password"]},
		"rename":{"body":["user:username"]},
		"replace":{"body":["role:admin","off:x"]},
		"add":{"body":["source:gw","role:no","off:added"]},
		"append":{"body":["tags:new","n:2","fresh:f"]}}`
	body := `{"password":"s","user":"bob","role":"guest","off":false,"tags":"old","n":1.50,"keep":{"a":[1,2]}}`
	req := run(t, cfg, "POST", "/", map[string]string{"Content-Type": "application/json; charset=utf-8"}, []byte(body))
	var got map[string]any
	if err := json.Unmarshal(req.Upstream().Body(), &got); err != nil {
		t.Fatalf("upstream body %q: %v", req.Upstream().Body(), err)
	}
	want := map[string]any{"username": "bob", "role": "admin", "off": "added", "source": "gw",
		"tags": []any{"old", "new"}, "n": []any{"2"}, "fresh": []any{"f"}, "keep": map[string]any{"a": []any{1.0, 2.0}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body = %v\nwant %v", got, want)
	}
	if cl, _ := req.Upstream().Header("Content-Length"); cl != fmt.Sprint(len(req.Upstream().Body())) {
		t.Errorf("Content-Length %s for %d bytes", cl, len(req.Upstream().Body()))
	}
	// Not a JSON object: sent unchanged.
	req = run(t, cfg, "POST", "/", map[string]string{"Content-Type": "application/json"}, []byte(`[1,2]`))
	if got := string(req.Upstream().Body()); got != `[1,2]` {
		t.Errorf("array body became %q", got)
	}
	// Empty body: only add and append apply.
	req = run(t, `{"add":{"body":["a:1"]},"remove":{"body":["a"]}}`, "POST", "/", map[string]string{"Content-Type": "application/json"}, nil)
	if got := string(req.Upstream().Body()); got != `{"a":"1"}` {
		t.Errorf("empty body became %q", got)
	}
}

func TestFormBody(t *testing.T) {
	cfg := `{"remove":{"body":["secret"]},"rename":{"body":["a:b"]},"add":{"body":["c:x y"]},"append":{"body":["a2:2"]}}`
	req := run(t, cfg, "POST", "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte("secret=1&a=va&a2=1"))
	if got, want := string(req.Upstream().Body()), "a2=1&a2=2&b=va&c=x%20y"; got != want {
		t.Errorf("form = %q, want %q", got, want)
	}
	// Another content type: untouched.
	req = run(t, cfg, "POST", "/", map[string]string{"Content-Type": "text/plain"}, []byte("secret=1"))
	if got := string(req.Upstream().Body()); got != "secret=1" || req.BodyReads() != 0 {
		t.Errorf("text body = %q, %d reads", got, req.BodyReads())
	}
}

func TestMultipartBody(t *testing.T) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("secret", "s")
	_ = w.WriteField("old", "v")
	fw, _ := w.CreateFormFile("file", "a.txt")
	_, _ = fw.Write([]byte("file content"))
	_ = w.Close()
	cfg := `{"remove":{"body":["secret"]},"rename":{"body":["old:new"]},"add":{"body":["extra:e"]}}`
	req := run(t, cfg, "POST", "/", map[string]string{"Content-Type": w.FormDataContentType()}, buf.Bytes())
	r := multipart.NewReader(bytes.NewReader(req.Upstream().Body()), w.Boundary())
	got := map[string]string{}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("upstream multipart: %v", err)
		}
		b, _ := io.ReadAll(p)
		got[p.FormName()+"|"+p.FileName()] = string(b)
	}
	want := map[string]string{"new|": "v", "file|a.txt": "file content", "extra|": "e"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parts = %v, want %v", got, want)
	}
}

func TestMethodAndURI(t *testing.T) {
	cfg := `{"http_method":"GET","replace":{"uri":"/v2/$(headers.x_id)"}}`
	req := run(t, cfg, "POST", "/v1?x=1", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Id": "42"}, []byte("a=1&x=2"))
	up := req.Upstream()
	if up.Method() != "GET" || up.Path() != "/v2/42" {
		t.Errorf("method %s path %s", up.Method(), up.Path())
	}
	if got := up.RawQuery(); got != "a=1&x=1&x=2" {
		t.Errorf("form moved to query: %q", got)
	}
}

func TestBodyErrors(t *testing.T) {
	cfg := `{"add":{"body":["a:1"]}}`
	big := bytes.Repeat([]byte("a"), maxBody+1)
	req := run(t, cfg, "POST", "/", map[string]string{"Content-Type": "application/json"}, big)
	if req.Response().Status() != 413 || req.Forwarded() {
		t.Errorf("too large: %d forwarded=%v", req.Response().Status(), req.Forwarded())
	}
	set, _ := plugintest.NewSet(New(), cfg)
	req = plugintest.New("POST", "/", map[string]string{"Content-Type": "application/json"}, []byte(`{}`))
	req.FailBody(fmt.Errorf("cut: %w", plugins.ErrClientBody))
	plugintest.Run(set, req.Context())
	if req.Response().Status() != 400 || req.Forwarded() {
		t.Errorf("client body error: %d", req.Response().Status())
	}
}

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New())
	tests := []struct {
		config string
		fields map[string]string
	}{
		{`{"add":{"headers":["x-a"]}}`, map[string]string{"add.headers": "invalid value: x-a"}},
		{`{"add":{"querystring":["q"]}}`, map[string]string{"add.querystring": "key 'q' has no value"}},
		{`{"add":{"headers":["bad name:v"]}}`, map[string]string{"add.headers": "'bad name' is not a valid header"}},
		{`{"rename":{"headers":["a:bad name"]}}`, map[string]string{"rename.headers": "'bad name' is not a valid header"}},
		{`{"http_method":"get"}`, map[string]string{"http_method": "invalid value: get"}},
		{`{"add":{"nope":[]}}`, map[string]string{"add.nope": "unknown field"}},
		{`{"add":{"headers":"x:y"}}`, map[string]string{"add.headers": "expected an array"}},
		{`{"add":null}`, map[string]string{"add": "required field missing"}},
		{`{"add":{"headers":null}}`, map[string]string{"add.headers": "required field missing"}},
		{`{"add":{"headers":["x:$(uri_captures.id)"]}}`, nil},
		{`{"replace":{"uri":"/$(os.exit())"}}`, nil},
		{`{"add":{"headers":["x:$(headers.a"]}}`, map[string]string{"add.headers": errUnclosed.Error()}},
	}
	for _, tc := range tests {
		_, fields, err := reg.Validate(Name, json.RawMessage(tc.config))
		if err == nil {
			t.Errorf("%s: accepted", tc.config)
			continue
		}
		if tc.fields == nil { // template refusals: the message names what is supported
			if len(fields) != 1 || !strings.Contains(fmt.Sprint(fields), "is not supported") {
				t.Errorf("%s: fields %v", tc.config, fields)
			}
			continue
		}
		if !reflect.DeepEqual(fields, tc.fields) {
			t.Errorf("%s: fields %v, want %v", tc.config, fields, tc.fields)
		}
	}
	out, _, err := reg.Validate(Name, json.RawMessage(`{"add":{"headers":["x:y"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"http_method":null,"remove":{"body":[],"headers":[],"querystring":[]},` +
		`"rename":{"body":[],"headers":[],"querystring":[]},` +
		`"replace":{"body":[],"headers":[],"querystring":[],"uri":null},` +
		`"add":{"body":[],"headers":["x:y"],"querystring":[]},"append":{"body":[],"headers":[],"querystring":[]}}`
	if string(out) != want {
		t.Errorf("normalized config\n%s\nwant\n%s", out, want)
	}
}

// TestSchema checks /schemas/plugins/request-transformer's config record
// against Kong 3.9's: records required with array defaults of [].
func TestSchema(t *testing.T) {
	config, _, err := plugins.NewRegistry(New()).ConfigSchema(Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(config)
	for _, want := range []string{
		`{"http_method":{"type":"string"}}`,
		`{"replace":{"fields":[{"body":{"default":[],"elements":{"type":"string"},"required":true,"type":"array"}},` +
			`{"headers":{"default":[],"elements":{"type":"string"},"required":true,"type":"array"}},` +
			`{"querystring":{"default":[],"elements":{"type":"string"},"required":true,"type":"array"}},` +
			`{"uri":{"type":"string"}}],"required":true,"type":"record"}}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("schema %s\nlacks %s", b, want)
		}
	}
}
