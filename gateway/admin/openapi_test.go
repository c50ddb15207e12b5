package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fetchSpec reads GET /openapi.json from the real handler over HTTP.
func fetchSpec(t *testing.T, e *testEnv) map[string]any {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var spec map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&spec); err != nil {
		t.Fatal(err)
	}
	if spec["openapi"] != "3.0.3" {
		t.Fatalf("openapi = %v", spec["openapi"])
	}
	return spec
}

var httpMethods = []string{"get", "put", "post", "delete", "patch"}

// TestOpenAPIMatchesEndpointTable checks both directions: every endpoint in
// the table is in the spec with exactly its methods, every endpoint is
// classified (described with real responses), and every spec path answers
// OPTIONS with exactly the spec's methods.
func TestOpenAPIMatchesEndpointTable(t *testing.T) {
	e := newEnv(t)
	spec := fetchSpec(t, e)
	paths := spec["paths"].(map[string]any)
	h := New(Options{Store: e.store, Metrics: testMetrics}).(*handler)
	if len(paths) != len(h.endpoints) {
		t.Errorf("spec has %d paths, endpoint table %d", len(paths), len(h.endpoints))
	}
	for _, ep := range h.endpoints {
		d := describe(ep.pattern)
		if d.role == roleUnknown {
			t.Errorf("pattern %q is not described: teach classify()", strings.Join(ep.pattern, "/"))
		}
		item, ok := paths[d.path].(map[string]any)
		if !ok {
			t.Errorf("pattern %q: path %s missing from the spec", strings.Join(ep.pattern, "/"), d.path)
			continue
		}
		var want []string
		for m := range ep.methods {
			want = append(want, strings.ToLower(m))
		}
		if got := specMethods(item); !slices.Equal(got, sortedCopy(want)) {
			t.Errorf("%s: spec methods %v, table %v", d.path, got, sortedCopy(want))
		}
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	for path, item := range paths {
		url := param.ReplaceAllString(path, "x")
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+url, nil)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("OPTIONS %s: %d, the spec's path is not served", url, resp.StatusCode)
			continue
		}
		var served []string
		for _, m := range strings.Split(resp.Header.Get("Allow"), ", ") {
			if m != http.MethodOptions {
				served = append(served, strings.ToLower(m))
			}
		}
		if got := specMethods(item.(map[string]any)); !slices.Equal(got, sortedCopy(served)) {
			t.Errorf("%s: spec methods %v, served %v", path, got, sortedCopy(served))
		}
	}
}

// TestOpenAPIOperations checks every operation documents its answers and
// that operation ids are unique, as OpenAPI requires.
func TestOpenAPIOperations(t *testing.T) {
	spec := fetchSpec(t, newEnv(t))
	ids := map[string]string{}
	for path, item := range spec["paths"].(map[string]any) {
		for _, m := range specMethods(item.(map[string]any)) {
			op := item.(map[string]any)[m].(map[string]any)
			id, _ := op["operationId"].(string)
			if prev, dup := ids[id]; dup || id == "" {
				t.Errorf("%s %s: operationId %q (also %s)", m, path, id, prev)
			}
			ids[id] = m + " " + path
			resp := op["responses"].(map[string]any)
			if _, ok := resp["default"]; ok {
				t.Errorf("%s %s: undescribed (default response)", m, path)
			}
			if _, ok := resp["401"]; !ok {
				t.Errorf("%s %s: 401 (admin_token) not documented", m, path)
			}
			ok2xx := false
			for code := range resp {
				ok2xx = ok2xx || strings.HasPrefix(code, "2")
			}
			if unsupported, _ := op["x-sluice-unsupported"].(bool); !ok2xx && !unsupported {
				t.Errorf("%s %s: no success answer documented", m, path)
			}
		}
	}
}

// TestOpenAPIResponsesConform sends real requests, successes and Kong's
// errors (400, 404, 405, 409), and validates every answer against the
// schema the spec documents for its path, method and status.
func TestOpenAPIResponsesConform(t *testing.T) {
	e := newEnv(t)
	spec := fetchSpec(t, e)
	svc := e.must(201, "POST", "/services", "application/json", `{"name":"s1","url":"http://example.com/p"}`)
	e.must(201, "POST", "/services/s1/routes", "application/json", `{"name":"r1","paths":["/a"],"headers":{"x-a":["b"]}}`)
	e.must(201, "POST", "/consumers", "application/json", `{"username":"alice","tags":["t"]}`)
	e.must(201, "POST", "/consumers/alice/key-auth", "application/json", `{"key":"k1"}`)
	e.must(201, "POST", "/services/s1/plugins", "application/json", `{"name":"rate-limiting","config":{"minute":5}}`)
	cases := []struct {
		method, path, specPath, body string
		want                         int
	}{
		{"GET", "/", "/", "", 200},
		{"GET", "/status", "/status", "", 200},
		{"GET", "/status?unit=x", "/status", "", 400},
		{"GET", "/plugins/enabled", "/plugins/enabled", "", 200},
		{"GET", "/services", "/services", "", 200},
		{"GET", "/services?size=1", "/services", "", 200},
		{"GET", "/services?size=0", "/services", "", 400},
		{"GET", "/services?offset=bogus", "/services", "", 400},
		{"GET", "/services/s1", "/services/{service}", "", 200},
		{"GET", "/services/nope", "/services/{service}", "", 404},
		{"POST", "/services", "/services", `{"name":"s1","host":"h"}`, 409},
		{"POST", "/services", "/services", `{"host":5}`, 400},
		{"POST", "/services", "/services", `{`, 400},
		{"PATCH", "/services/s1", "/services/{service}", `{"retries":3}`, 200},
		{"PUT", "/services/s2", "/services/{service}", `{"host":"example.org"}`, 200},
		{"DELETE", "/services/s1", "/services/{service}", "", 400},
		{"GET", "/services/s1/routes", "/services/{service}/routes", "", 200},
		{"GET", "/routes/r1", "/routes/{route}", "", 200},
		{"GET", "/routes/r1/service", "/routes/{route}/service", "", 200},
		{"GET", "/consumers/alice", "/consumers/{consumer}", "", 200},
		{"GET", "/consumers/alice/key-auth", "/consumers/{consumer}/key-auth", "", 200},
		{"GET", "/key-auths/k1", "/key-auths/{key_auth}", "", 200},
		{"GET", "/key-auths", "/key-auths", "", 200},
		{"GET", "/plugins", "/plugins", "", 200},
		{"POST", "/plugins", "/plugins", `{"name":"nope"}`, 400},
		{"GET", "/cache", "/cache", "", 200},
		{"GET", "/cache/services:" + id(svc), "/cache/{cache_key}", "", 404},
		{"DELETE", "/status", "/status", "", 405},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			status, body := e.raw(c.method, c.path, c.body)
			if status != c.want {
				t.Fatalf("status %d, want %d: %s", status, c.want, body)
			}
			schema := responseSchema(t, spec, c.specPath, c.method, status)
			var doc any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("not JSON: %q", body)
			}
			if err := conforms(spec, schema, doc, "$"); err != nil {
				t.Fatalf("answer does not match the spec: %v\n%s", err, body)
			}
		})
	}
}

// raw sends a JSON request and returns the status and body.
func (e *testEnv) raw(method, path, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// responseSchema returns the documented schema of an answer; 405 (a method
// the path does not have) is Kong's error body.
func responseSchema(t *testing.T, spec map[string]any, path, method string, status int) any {
	t.Helper()
	if status == http.StatusMethodNotAllowed {
		return ref("Error")
	}
	item, ok := spec["paths"].(map[string]any)[path].(map[string]any)
	if !ok {
		t.Fatalf("path %s not in the spec", path)
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Fatalf("%s %s not in the spec", method, path)
	}
	r, ok := op["responses"].(map[string]any)[fmt.Sprint(status)].(map[string]any)
	if !ok {
		t.Fatalf("%s %s: status %d not documented", method, path, status)
	}
	return r["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
}

// conforms validates doc against the subset of OpenAPI 3.0 schemas the
// spec uses: $ref, type, nullable, properties, required, items,
// additionalProperties and enum.
func conforms(spec map[string]any, schema, doc any, at string) error {
	s := schema.(map[string]any)
	if r, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(r, "#/components/schemas/")
		return conforms(spec, spec["components"].(map[string]any)["schemas"].(map[string]any)[name], doc, at)
	}
	if doc == nil {
		if s["nullable"] == true {
			return nil
		}
		return fmt.Errorf("%s: null, not nullable", at)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, doc) {
		return fmt.Errorf("%s: %v not in %v", at, doc, enum)
	}
	switch s["type"] {
	case "object":
		m, ok := doc.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want object", at, doc)
		}
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: required %q missing", at, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if ps, ok := props[k]; ok {
				if err := conforms(spec, ps, m[k], at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				if err := conforms(spec, ap, m[k], at+"."+k); err != nil {
					return err
				}
			}
		}
	case "array":
		a, ok := doc.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want array", at, doc)
		}
		for i, v := range a {
			if err := conforms(spec, s["items"], v, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := doc.(string); !ok {
			return fmt.Errorf("%s: %T, want string", at, doc)
		}
	case "integer":
		if f, ok := doc.(float64); !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: %v, want integer", at, doc)
		}
	case "boolean":
		if _, ok := doc.(bool); !ok {
			return fmt.Errorf("%s: %T, want boolean", at, doc)
		}
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func specMethods(item map[string]any) []string {
	var out []string
	for _, m := range httpMethods {
		if _, ok := item[m]; ok {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
