package admin

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func TestWriteErrors(t *testing.T) {
	e := newEnv(t)
	const js, form = "application/json", "application/x-www-form-urlencoded"
	svc := e.must(201, "POST", "/services", js, `{"name":"svc","host":"example.com"}`)
	e.must(201, "POST", "/consumers", js, `{"username":"alice"}`)
	e.must(201, "POST", "/services/svc/plugins", js, `{"name":"rate-limiting","config":{"minute":5}}`)

	tests := []struct {
		name         string
		method, path string
		ct, body     string
		status       int
		code         float64 // 0: a bare {"message"} body
		field        string  // a key of "fields" (dotted for nested)
		want         string  // substring of fields[field], or of message
	}{
		{"missing host", "POST", "/services", js, `{"name":"a"}`, 400, 2, "host", "required field missing"},
		{"service path", "POST", "/services", js, `{"host":"x","path":"api"}`, 400, 2, "path", "should start with: /"},
		{"unknown field", "POST", "/services", js, `{"host":"x","foo":1}`, 400, 2, "foo", "unknown field"},
		{"integer type", "POST", "/services", js, `{"host":"x","port":"abc"}`, 400, 2, "port", "expected an integer"},
		{"fractional integer", "POST", "/services", js, `{"host":"x","port":80.5}`, 400, 2, "port", "expected an integer"},
		{"string type", "POST", "/services", js, `{"host":5}`, 400, 2, "host", "expected a string"},
		{"boolean type", "POST", "/services", js, `{"host":"x","enabled":"yes"}`, 400, 2, "enabled", "expected a boolean"},
		{"set type", "POST", "/routes", js, `{"paths":["/a"],"protocols":"http"}`, 400, 2, "protocols", "expected a set"},
		{"form integer", "POST", "/services", form, "host=x&port=abc", 400, 2, "port", "expected an integer"},
		{"form boolean", "POST", "/services", form, "host=x&enabled=maybe", 400, 2, "enabled", "expected a boolean"},
		{"port range", "POST", "/services", js, `{"host":"x","port":70000}`, 400, 2, "port", "between 0 and 65535"},
		{"bad url", "POST", "/services", form, "url=nohost", 400, 2, "url", "missing"},
		{"protocol", "POST", "/services", js, `{"host":"x","protocol":"ftp"}`, 400, 2, "protocol", "expected one of"},
		{"malformed json", "POST", "/services", js, `{"host":`, 400, 0, "", "Cannot parse JSON body"},
		{"json array", "POST", "/services", js, `["host"]`, 400, 0, "", "Cannot parse JSON body"},
		{"trailing json", "POST", "/services", js, `{"host":"x"} {}`, 400, 0, "", "Cannot parse JSON body"},
		{"unsupported type", "POST", "/services", "text/plain", "host=x", 415, 0, "", "Unsupported Content-Type"},
		{"duplicate name", "POST", "/services", js, `{"name":"svc","host":"x"}`, 409, 5, "name", "svc"},
		{"duplicate id", "POST", "/services", js, `{"id":"` + id(svc) + `","host":"x"}`, 400, 3, "id", id(svc)},
		{"bad id", "POST", "/services", js, `{"id":"nope","host":"x"}`, 400, 2, "id", "expected a valid UUID"},
		{"bad name", "POST", "/services", js, `{"name":"a b","host":"x"}`, 400, 2, "name", "invalid value"},
		{"route path", "POST", "/routes", js, `{"paths":["api"]}`, 400, 2, "paths", "should start with: /"},
		{"route empty segment", "POST", "/routes", js, `{"paths":["/a//b"]}`, 400, 2, "paths", "empty segments"},
		{"route regex", "POST", "/routes", js, `{"paths":["~/v(["]}`, 400, 2, "paths", "invalid regex"},
		{"route nothing to match", "POST", "/routes", js, `{"name":"r"}`, 400, 2, "@entity", "must set one of"},
		{"route wildcard middle", "POST", "/routes", js, `{"hosts":["a.*.com"]}`, 400, 2, "hosts", "leftmost or rightmost"},
		{"route two wildcards", "POST", "/routes", js, `{"hosts":["*.a.*"]}`, 400, 2, "hosts", "at most one wildcard"},
		{"route redirect code", "POST", "/routes", js, `{"paths":["/"],"https_redirect_status_code":300}`, 400, 2, "https_redirect_status_code", "426"},
		{"route host header", "POST", "/routes", js, `{"headers":{"Host":["a"]}}`, 400, 2, "headers", "host"},
		{"route method", "POST", "/routes", js, `{"methods":["get"]}`, 400, 2, "methods", "invalid value"},
		{"route missing service", "POST", "/routes", js, `{"paths":["/"],"service":{"id":"` + uuid.NewString() + `"}}`, 400, 4, "service.id", ""},
		{"route service not uuid", "POST", "/routes", js, `{"paths":["/"],"service":{"id":"x"}}`, 400, 2, "service", "expected a valid UUID"},
		{"route service record", "POST", "/routes", js, `{"paths":["/"],"service":"x"}`, 400, 2, "service", "expected a record"},
		{"consumer empty", "POST", "/consumers", js, `{"tags":["a"]}`, 400, 2, "@entity", "at least one of"},
		{"consumer duplicate", "POST", "/consumers", form, "username=alice", 409, 5, "username", "alice"},
		{"plugin no name", "POST", "/plugins", js, `{}`, 400, 2, "name", "required field missing"},
		{"plugin unknown", "POST", "/plugins", js, `{"name":"nope"}`, 400, 2, "name", "not enabled"},
		{"plugin config", "POST", "/plugins", js, `{"name":"rate-limiting","config":{"minute":-1}}`, 400, 2, "config.minute", "greater than 0"},
		{"plugin config type", "POST", "/plugins", js, `{"name":"rate-limiting","config":5}`, 400, 2, "config", "expected a record"},
		{"plugin duplicate", "POST", "/services/svc/plugins", form, "name=rate-limiting&config.minute=7", 409, 5, "name", "rate-limiting"},
		{"key-auth duplicate", "POST", "/consumers/alice/key-auth", js, `{"key":"k1"}`, 201, -1, "", ""},
		{"key-auth duplicate again", "POST", "/consumers/alice/key-auth", js, `{"key":"k1"}`, 409, 5, "key", "k1"},
		{"invalid size", "GET", "/services?size=abc", "", "", 400, 9, "", "size must be a number"},
		{"size too big", "GET", "/services?size=5000", "", "", 400, 9, "", "between 1 and 1000"},
		{"invalid offset", "GET", "/services?offset=%21%21%21", "", "", 400, 7, "", "not a valid offset"},
		{"method not allowed", "PATCH", "/services", js, `{}`, 405, 0, "", "Method not allowed"},
		{"method not allowed on item", "POST", "/services/svc", js, `{}`, 405, 0, "", "Method not allowed"},
		{"unknown path", "GET", "/nope", "", "", 404, 0, "", "Not found"},
		{"unknown nested path", "GET", "/services/svc/nope", "", "", 404, 0, "", "Not found"},
		{"missing entity", "GET", "/services/nope", "", "", 404, 0, "", "Not found"},
		{"missing parent", "GET", "/services/nope/routes", "", "", 404, 0, "", "Not found"},
		{"patch missing", "PATCH", "/services/nope", js, `{"retries":1}`, 404, 0, "", "Not found"},
		{"plugin by non-uuid", "GET", "/plugins/nope", "", "", 404, 0, "", "Not found"},
		{"body too large", "POST", "/services", js, `{"host":"` + strings.Repeat("a", 2<<20) + `"}`, 413, 0, "", "too large"},
		{"cache without key", "POST", "/cache", "", "", 405, 0, "", "Method not allowed"},
		{"status method", "DELETE", "/status", "", "", 405, 0, "", "Method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.do(tt.method, tt.path, tt.ct, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d; body %v", status, tt.status, out)
			}
			if tt.code < 0 {
				return
			}
			if status == 500 || out == nil {
				t.Fatalf("body %v", out)
			}
			if tt.code == 0 {
				if msg, _ := out["message"].(string); !strings.Contains(msg, tt.want) || len(out) != 1 {
					t.Fatalf("body %v, want only a message containing %q", out, tt.want)
				}
				return
			}
			if out["code"] != tt.code {
				t.Fatalf("code %v, want %v; body %v", out["code"], tt.code, out)
			}
			if tt.field == "" {
				if msg, _ := out["message"].(string); !strings.Contains(msg, tt.want) {
					t.Fatalf("message %q, want it to contain %q", msg, tt.want)
				}
				return
			}
			got := lookup(out["fields"], tt.field)
			if got == nil || !strings.Contains(fmt.Sprint(got), tt.want) {
				t.Fatalf("fields.%s = %v, want it to contain %q; body %v", tt.field, got, tt.want, out)
			}
		})
	}
}

// lookup returns the value at a dotted path of nested JSON objects.
func lookup(v any, path string) any {
	for p := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func TestSchemaViolationMessage(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, body, want string
	}{
		{"one", `{"path":"/a"}`, "schema violation (host: required field missing)"},
		{"two", `{"path":"a"}`, "2 schema violations (host: required field missing; path: should start with: /)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.must(400, "POST", "/services", "application/json", tt.body)
			if out["message"] != tt.want || out["name"] != "schema violation" {
				t.Fatalf("body %v, want message %q", out, tt.want)
			}
		})
	}
}

func TestInvalidationKeys(t *testing.T) {
	e := newEnv(t)
	const js = "application/json"
	svc := id(e.must(201, "POST", "/services", js, `{"name":"s","host":"x"}`))
	if got, want := e.rec.keys(t), []string{"services:" + svc}; !slices.Equal(got, want) {
		t.Fatalf("create service keys %v, want %v", got, want)
	}
	route := id(e.must(201, "POST", "/services/s/routes", js, `{"name":"r","paths":["/r"]}`))
	plugin := id(e.must(201, "POST", "/routes/r/plugins", js, `{"name":"rate-limiting","config":{"minute":1}}`))
	e.rec.keys(t)
	consumer := id(e.must(201, "POST", "/consumers", js, `{"username":"c"}`))
	e.rec.keys(t)
	cred := id(e.must(201, "POST", "/consumers/c/key-auth", js, `{"key":"old-key"}`))
	e.rec.keys(t)

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     []string
	}{
		{"patch service", "PATCH", "/services/s", `{"retries":1}`, 200,
			[]string{"services:" + svc}},
		{"patch plugin", "PATCH", "/plugins/" + plugin, `{"config":{"minute":2}}`, 200,
			[]string{"plugins:" + plugin}},
		{"key change purges old and new key", "PATCH", "/consumers/c/key-auth/old-key", `{"key":"new-key"}`, 200,
			[]string{"keyauth_credentials:new-key", "keyauth_credentials:old-key"}},
		{"put consumer", "PUT", "/consumers/c", `{"custom_id":"x"}`, 200,
			[]string{"consumers:" + consumer}},
		{"delete route cascades its plugin", "DELETE", "/routes/r", "", 204,
			[]string{"plugins:" + plugin, "routes:" + route}},
		{"delete consumer cascades its credential", "DELETE", "/consumers/c", "", 204,
			[]string{"consumers:" + consumer, "keyauth_credentials:new-key"}},
		{"delete of a missing entity emits nothing", "DELETE", "/consumers/c", "", 204, nil},
		{"failed write emits nothing", "POST", "/services", `{"name":"s","host":"x"}`, 409, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.must(tt.status, tt.method, tt.path, js, tt.body)
			if tt.status == 409 {
				// The Apply failed: its events were never committed and
				// nothing may be invalidated locally.
				if _, inv := e.rec.take(); len(inv) != 0 {
					t.Fatalf("failed write invalidated %v", inv)
				}
				return
			}
			got := e.rec.keys(t)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("keys %v, want %v", got, tt.want)
			}
		})
	}
	_ = cred
}

func TestCascadeDeletesDependents(t *testing.T) {
	e := newEnv(t)
	const js = "application/json"
	e.must(201, "POST", "/services", js, `{"name":"s","host":"x"}`)
	sp := id(e.must(201, "POST", "/services/s/plugins", js, `{"name":"rate-limiting","config":{"minute":1}}`))
	e.must(201, "POST", "/consumers", js, `{"username":"c"}`)
	cp := id(e.must(201, "POST", "/consumers/c/plugins", js, `{"name":"rate-limiting","config":{"hour":1}}`))
	e.must(201, "POST", "/consumers/c/key-auth", js, `{}`)

	e.must(204, "DELETE", "/services/s", "", "")
	e.must(404, "GET", "/plugins/"+sp, "", "")
	e.must(200, "GET", "/plugins/"+cp, "", "")

	e.must(204, "DELETE", "/consumers/c", "", "")
	e.must(404, "GET", "/plugins/"+cp, "", "")
	if list := e.must(200, "GET", "/key-auths", "", ""); len(list["data"].([]any)) != 0 {
		t.Fatalf("credentials left after consumer deletion: %v", list)
	}
}

func TestPaging(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.must(201, "POST", "/consumers", "application/json", fmt.Sprintf(`{"username":"u%d"}`, i))
	}
	var seen []string
	next := "/consumers?size=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		out := e.must(200, "GET", next, "", "")
		for _, d := range out["data"].([]any) {
			seen = append(seen, d.(map[string]any)["username"].(string))
		}
		n, ok := out["next"]
		if !ok {
			t.Fatal("next key missing")
		}
		if n == nil {
			if _, ok := out["offset"]; ok {
				t.Fatalf("last page has an offset: %v", out)
			}
			next = ""
			continue
		}
		next = n.(string)
		u, err := url.Parse(next)
		if err != nil || u.Query().Get("offset") != out["offset"] || u.Path != "/consumers" {
			t.Fatalf("next %q does not carry offset %v", next, out["offset"])
		}
	}
	slices.Sort(seen)
	if want := []string{"u0", "u1", "u2", "u3", "u4"}; !slices.Equal(seen, want) {
		t.Fatalf("paged through %v, want %v", seen, want)
	}
	empty := e.must(200, "GET", "/services", "", "")
	if d, ok := empty["data"].([]any); !ok || len(d) != 0 || empty["next"] != nil {
		t.Fatalf("empty list %v, want data [] and next null", empty)
	}
}

func TestKeyAuthCredentials(t *testing.T) {
	e := newEnv(t)
	const js = "application/json"
	alice := id(e.must(201, "POST", "/consumers", js, `{"username":"alice"}`))
	e.must(201, "POST", "/consumers", js, `{"custom_id":"bob-1"}`)
	gen := e.must(201, "POST", "/consumers/alice/key-auth", "", "")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(gen["key"].(string)) {
		t.Fatalf("generated key %v", gen["key"])
	}
	if ref := gen["consumer"].(map[string]any); ref["id"] != alice {
		t.Fatalf("credential consumer %v, want %s", ref, alice)
	}
	e.must(200, "GET", "/consumers/alice/key-auth/"+gen["key"].(string), "", "")
	e.must(200, "GET", "/consumers/"+alice+"/key-auth/"+id(gen), "", "")
	e.must(200, "GET", "/key-auths/"+gen["key"].(string), "", "")
	put := e.must(200, "PUT", "/consumers/alice/key-auth/my-key", js, `{}`)
	if put["key"] != "my-key" {
		t.Fatalf("PUT by key: %v", put)
	}
	e.must(404, "GET", "/consumers/"+uuid.NewString()+"/key-auth/my-key", "", "")
	bob := e.must(200, "GET", "/consumers/"+id(e.must(200, "GET", "/key-auths/my-key", "", "")["consumer"].(map[string]any))+"/key-auth", "", "")
	if len(bob["data"].([]any)) != 2 {
		t.Fatalf("alice's credentials %v", bob)
	}
	if list := e.must(200, "GET", "/key-auths", "", ""); len(list["data"].([]any)) != 2 {
		t.Fatalf("/key-auths %v", list)
	}
	e.must(204, "DELETE", "/consumers/alice/key-auth/my-key", "", "")
	e.must(404, "GET", "/key-auths/my-key", "", "")
}

func TestPluginsFromForms(t *testing.T) {
	e := newEnv(t)
	const form = "application/x-www-form-urlencoded"
	rl := e.must(201, "POST", "/plugins", form, "name=rate-limiting&config.minute=5&enabled=false&protocols[]=http&protocols[]=https")
	cfg := rl["config"].(map[string]any)
	if cfg["minute"] != 5.0 || cfg["policy"] != "local" || rl["enabled"] != false {
		t.Fatalf("rate-limiting %v", rl)
	}
	if p := rl["protocols"].([]any); len(p) != 2 {
		t.Fatalf("protocols %v", p)
	}
	patched := e.must(200, "PATCH", "/plugins/"+id(rl), form, "config.hour=100")
	if c := patched["config"].(map[string]any); c["minute"] != 5.0 || c["hour"] != 100.0 {
		t.Fatalf("PATCH config must merge: %v", c)
	}
	ka := e.must(201, "POST", "/plugins", form, "name=key-auth&config.key_names=apikey&config.anonymous=123")
	c := ka["config"].(map[string]any)
	if names, _ := c["key_names"].([]any); len(names) != 1 || names[0] != "apikey" || c["anonymous"] != "123" {
		t.Fatalf("key-auth config %v", c)
	}
	if d := ka["protocols"].([]any); len(d) != 4 {
		t.Fatalf("default plugin protocols %v", d)
	}
	mp := e.must(201, "POST", "/routes", "", "paths[1]=/a&paths[2]=/b&headers.x-foo=bar&hosts=a.example.com&hosts=*.b.example.com")
	if p := mp["paths"].([]any); len(p) != 2 || p[0] != "/a" || p[1] != "/b" {
		t.Fatalf("paths %v", p)
	}
	if h := mp["headers"].(map[string]any)["x-foo"].([]any); len(h) != 1 || h[0] != "bar" {
		t.Fatalf("headers %v", mp["headers"])
	}
}

// TestDeleteRacesInserts deletes a consumer while plugins are being added
// to it: the delete succeeds (retrying its cascade when an insert slips in)
// and no plugin outlives the consumer.
func TestDeleteRacesInserts(t *testing.T) {
	e := newEnv(t)
	const js = "application/json"
	for round := range 3 {
		name := fmt.Sprintf("racer%d", round)
		cid := id(e.must(201, "POST", "/consumers", js, `{"username":"`+name+`"}`))
		var wg sync.WaitGroup
		statuses := make(chan int, 8)
		for i := range 8 {
			wg.Go(func() {
				body := fmt.Sprintf(`{"name":"rate-limiting","config":{"second":%d}}`, i+1)
				body = strings.Replace(body, `"name"`, `"consumer":{"id":"`+cid+`"},"name"`, 1)
				status, _ := e.json("POST", "/plugins", body)
				statuses <- status
			})
		}
		e.must(204, "DELETE", "/consumers/"+name, "", "")
		wg.Wait()
		close(statuses)
		for s := range statuses {
			// 201 before the delete; 400 (foreign key) or 409 (another
			// racer's plugin has the same scope) after it.
			if s != 201 && s != 400 && s != 409 {
				t.Fatalf("concurrent plugin insert answered %d", s)
			}
		}
		e.must(404, "GET", "/consumers/"+cid, "", "")
		if left := e.must(200, "GET", "/plugins", "", "")["data"].([]any); len(left) != 0 {
			t.Fatalf("round %d: plugins outlived their consumer: %v", round, left)
		}
	}
}
