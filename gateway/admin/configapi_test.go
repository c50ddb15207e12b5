package admin

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestDBLessConfig drives a DB-less node's Admin API: POST /config loads a
// configuration, entity writes answer 405, an invalid configuration is
// refused with every problem and changes nothing, a new one replaces the
// old whole, and GET /config exports what POST /config takes back.
func TestDBLessConfig(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(New(Options{Store: newStore(t), Plugins: testRegistry(), Cluster: rec, DBLess: true}))
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, srv: srv}
	const js, yml = "application/json", "application/yaml"

	first := "_format_version: \"3.0\"\nservices:\n- name: s1\n  url: http://a.example\n  routes:\n  - {name: r1, paths: [/a]}\n- name: s2\n  host: b.example\n" +
		"consumers:\n- username: c1\n  basicauth_credentials: [{username: b1, password: pw}]\n  jwt_secrets: [{key: j1}]\n"
	got := e.must(201, "POST", "/config", yml, first)
	if ents := got["entities"].(map[string]any); ents["services"] != 2.0 || ents["routes"] != 1.0 {
		t.Fatalf("POST /config = %v", got)
	}
	if events, invalidated := rec.take(); len(events) != 0 || len(invalidated) == 0 {
		t.Errorf("POST /config wrote %d cluster events (want none: no other node shares the datastore) and invalidated %d keys",
			len(events), len(invalidated))
	}
	s1 := id(e.must(200, "GET", "/services/s1", "", ""))

	for _, w := range []struct{ method, path, msg string }{
		{"POST", "/services", "cannot create 'services' entities when not using a database"},
		{"PATCH", "/services/s1", "cannot update 'services' entities when not using a database"},
		{"PUT", "/routes/r1", "cannot create or update 'routes' entities when not using a database"},
		{"DELETE", "/services/s2", "cannot delete 'services' entities when not using a database"},
		{"POST", "/services/s1/routes", "cannot create 'routes' entities when not using a database"},
	} {
		if got := e.must(405, w.method, w.path, js, `{"name":"x"}`); got["message"] != w.msg {
			t.Errorf("%s %s: %v, want %q", w.method, w.path, got["message"], w.msg)
		}
	}

	bad := e.must(400, "POST", "/config", yml, "_format_version: \"3.0\"\nservices:\n- {name: s3}\n- {name: s4, host: h, port: -1}\n")
	problems := bad["fields"].(map[string]any)["@entity"].([]any)
	if bad["code"] != 14.0 || bad["name"] != "invalid declarative configuration" || len(problems) != 2 {
		t.Fatalf("invalid config answered %v", bad)
	}
	e.must(200, "GET", "/services/s2", "", "") // unchanged

	// s2 goes, s1 stays (same id: its name is its key), r1 moves to s3.
	if b := e.must(200, "GET", "/basic-auths/b1", "", ""); b["password"] == "pw" || b["password"] == "" {
		t.Errorf("DB-less basic-auth credential stored %v, want the password's hash", b["password"])
	}
	e.must(200, "GET", "/jwts/j1", "", "")
	second := url.Values{"config": {"_format_version: \"3.0\"\nservices:\n- {name: s1, url: \"http://a2.example\"}\n" +
		"- name: s3\n  host: c.example\n  routes:\n  - {name: r1, paths: [/c]}\n" +
		"consumers:\n- username: c1\n  basicauth_credentials: [{username: b1, password: pw}]\n"}}.Encode()
	e.must(201, "POST", "/config", "application/x-www-form-urlencoded", second)
	e.must(404, "GET", "/services/s2", "", "")
	if got := e.must(200, "GET", "/services/s1", "", ""); id(got) != s1 || got["host"] != "a2.example" {
		t.Errorf("s1 after the second config: %v (id was %s)", got, s1)
	}
	s3 := id(e.must(200, "GET", "/services/s3", "", ""))
	if r := e.must(200, "GET", "/routes/r1", "", ""); r["service"].(map[string]any)["id"] != s3 {
		t.Errorf("r1 = %v, want it on s3", r)
	}

	exported := e.must(200, "GET", "/config", "", "")["config"].(string)
	if !strings.Contains(exported, "name: s3") || strings.Contains(exported, "name: s2") ||
		!strings.Contains(exported, "basicauth_credentials:") || strings.Contains(exported, "jwt_secrets:") {
		t.Fatalf("GET /config:\n%s", exported)
	}
	rec.take()
	e.must(201, "POST", "/config", js, `{"config":`+quote(exported)+`}`)
	if _, invalidated := rec.take(); len(invalidated) != 0 {
		t.Errorf("posting the configuration it has invalidated %v, want nothing (nothing changed)", invalidated)
	}
	if again := e.must(200, "GET", "/config", "", "")["config"].(string); again != exported {
		t.Errorf("GET /config after posting it back differs:\n%s\n---\n%s", exported, again)
	}

	db := httptest.NewServer(New(Options{Store: newStore(t), Plugins: testRegistry()}))
	t.Cleanup(db.Close)
	dbEnv := &testEnv{t: t, srv: db}
	dbEnv.must(400, "POST", "/config", yml, first)
	dbEnv.must(400, "GET", "/config", "", "")
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
