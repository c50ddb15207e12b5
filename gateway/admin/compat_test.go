package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/basicauth"
	"github.com/sluice-gw/sluice/gateway/plugins/httplog"
	"github.com/sluice-gw/sluice/gateway/plugins/jwt"
	"github.com/sluice-gw/sluice/gateway/plugins/keyauth"
	promplugin "github.com/sluice-gw/sluice/gateway/plugins/prometheus"
	"github.com/sluice-gw/sluice/gateway/plugins/ratelimiting"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttransformer"
	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/gateway/store/postgres"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// The compatibility suite: Kong's documented Admin API behaviours as
// request → status and body, run against a real handler on SQLite and on
// PostgreSQL. Each scenario is a sequence of steps on a fresh datastore.
//
// A step's want is a JSON document the answer must contain: objects match
// when every key of want matches (extra keys in the answer are fine),
// arrays when they have the same length and every element matches, and
// scalars when equal. Two strings are special: "<absent>" requires the key
// to be missing, "<any>" accepts any non-null value. ${name} in a path,
// body or want is replaced by the id saved by an earlier step's save.

type compatStep struct {
	name         string
	method, path string
	body         string // JSON, or a form when form is set
	form         bool
	status       int
	want         string
	save         string    // save the answer's "id" under this name
	header       [2]string // a response header's name and its wanted value
}

type compatScenario struct {
	name  string
	steps []compatStep
}

// compatScenarios is filled by the compat_*_test.go files' init functions,
// one group of Kong behaviours per file.
var compatScenarios []compatScenario

func TestKongCompatibility(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store { return newStore(t) }},
		{"postgres", openPostgres},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, sc := range compatScenarios {
				t.Run(sc.name, func(t *testing.T) {
					st := b.open(t)
					counters, _ := st.(store.Counters)
					reg := plugins.NewRegistry(ratelimiting.New(ratelimiting.Options{Cluster: counters}), keyauth.New(nil),
						basicauth.New(nil), jwt.New(nil), requesttransformer.New(), httplog.New(httplog.Options{}), promplugin.New(nil))
					t.Cleanup(func() { _ = reg.Close() })
					srv := httptest.NewServer(New(Options{Store: st, Plugins: reg,
						NodeID: "node-1", Version: "1.2.3-test", Hostname: "test-host",
						Configuration: map[string]any{"database": b.name}}))
					t.Cleanup(srv.Close)
					vars := map[string]string{}
					for i, step := range sc.steps {
						name := step.name
						if name == "" {
							name = fmt.Sprintf("%d %s %s", i, step.method, step.path)
						}
						if !t.Run(name, func(t *testing.T) { runStep(t, srv, step, vars) }) {
							t.FailNow() // later steps depend on this one
						}
					}
				})
			}
		})
	}
}

func runStep(t *testing.T, srv *httptest.Server, s compatStep, vars map[string]string) {
	expand := func(v string) string {
		for k, val := range vars {
			v = strings.ReplaceAll(v, "${"+k+"}", val)
		}
		return v
	}
	req, err := http.NewRequest(s.method, srv.URL+expand(s.path), strings.NewReader(expand(s.body)))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case s.form:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case s.body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got any
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&got); err != nil && s.want != "" {
		t.Fatalf("%s %s: answer is not JSON: %v", s.method, s.path, err)
	}
	if resp.StatusCode != s.status {
		t.Fatalf("%s %s %s: status %d, want %d; body %v", s.method, s.path, s.body, resp.StatusCode, s.status, got)
	}
	if h := s.header; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
		t.Errorf("%s %s: header %s = %q, want %q", s.method, s.path, h[0], resp.Header.Get(h[0]), h[1])
	}
	if s.want != "" {
		var want any
		if err := json.Unmarshal([]byte(expand(s.want)), &want); err != nil {
			t.Fatalf("bad want %q: %v", s.want, err)
		}
		if msg := jsonContains("", want, got); msg != "" {
			data, _ := json.Marshal(got)
			t.Fatalf("%s %s: %s\nanswer: %s", s.method, s.path, msg, data)
		}
	}
	if s.save != "" {
		obj, _ := got.(map[string]any)
		id, _ := obj["id"].(string)
		if id == "" {
			t.Fatalf("%s %s: no id to save as %s", s.method, s.path, s.save)
		}
		vars[s.save] = id
	}
}

// jsonContains returns "" when got contains want (see the suite's doc),
// else what differs and where.
func jsonContains(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: got %v, want an object", path, got)
		}
		for k, wv := range w {
			gv, present := g[k]
			switch {
			case wv == "<absent>":
				if present {
					return fmt.Sprintf("%s.%s: got %v, want it absent", path, k, gv)
				}
			case !present:
				return fmt.Sprintf("%s.%s: missing, want %v", path, k, wv)
			default:
				if msg := jsonContains(path+"."+k, wv, gv); msg != "" {
					return msg
				}
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %v, want %v", path, got, want)
		}
		for i := range w {
			if msg := jsonContains(path+"["+strconv.Itoa(i)+"]", w[i], g[i]); msg != "" {
				return msg
			}
		}
		return ""
	case string:
		if w == "<any>" && got != nil {
			return ""
		}
	}
	if want != got {
		return fmt.Sprintf("%s: got %v, want %v", path, got, want)
	}
	return ""
}

// openPostgres opens a migrated store on the server SLUICE_TEST_PG_DSN
// names, in a schema of its own dropped when the test ends. It skips the
// test when the variable is unset (fails it when CI=true).
func openPostgres(t *testing.T) store.Store {
	t.Helper()
	pg := testenv.Postgres(t)
	c := postgres.Config{Host: pg.Host, Port: pg.Port, User: pg.User, Password: pg.Password, Database: pg.Database,
		SSL: pg.SSL, Schema: pg.FreshSchema(t, "sluice_admin_")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, c)
	return migrated(t, st, err)
}
