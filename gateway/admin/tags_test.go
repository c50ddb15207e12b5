package admin

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// pageAll follows next links from path and returns every username (or
// name) seen and the pages read; each next link must carry tags.
func pageAll(t *testing.T, e *testEnv, path, field, tags string) ([]string, []int) {
	t.Helper()
	var seen []string
	var sizes []int
	for next := path; next != ""; {
		if len(sizes) > 50 {
			t.Fatalf("more than 50 pages from %s", path)
		}
		out := e.must(200, "GET", next, "", "")
		data := out["data"].([]any)
		sizes = append(sizes, len(data))
		for _, d := range data {
			seen = append(seen, d.(map[string]any)[field].(string))
		}
		next = ""
		if n, ok := out["next"].(string); ok {
			u, err := url.Parse(n)
			if err != nil || u.Query().Get("tags") != tags {
				t.Fatalf("next link %q does not carry tags=%s", n, tags)
			}
			next = n
		}
	}
	slices.Sort(seen)
	return seen, sizes
}

func TestTagFilter(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ name, tags string }{
		{"c1", `["corp_a","consumer1"]`}, {"c2", `["corp_a","consumer2"]`}, {"c3", `["other"]`},
		{"c4", `null`}, {"c5", `["ünïcode","x.y-z~"]`},
	} {
		e.must(201, "POST", "/consumers", "application/json", fmt.Sprintf(`{"username":%q,"tags":%s}`, c.name, c.tags))
	}
	svc := e.must(201, "POST", "/services", "application/json", `{"name":"s","host":"up.example"}`)
	e.must(201, "POST", "/services/s/routes", "application/json", `{"name":"r-tagged","paths":["/a"],"tags":["edge"]}`)
	e.must(201, "POST", "/services/s/routes", "application/json", `{"name":"r-plain","paths":["/b"]}`)

	tests := []struct {
		path, tags string
		want       []string
	}{
		{"/consumers", "corp_a", []string{"c1", "c2"}},
		{"/consumers", "corp_a,consumer1", []string{"c1"}},
		{"/consumers", "consumer2/consumer1", []string{"c1", "c2"}},
		{"/consumers", "other/consumer1", []string{"c1", "c3"}},
		{"/consumers", "corp_a,other", nil},
		{"/consumers", "nope", nil},
		{"/consumers", "ünïcode", []string{"c5"}},
		{"/services/s/routes", "edge", []string{"r-tagged"}},
		{"/services/" + id(svc) + "/routes", "edge/nope", []string{"r-tagged"}},
	}
	for _, tt := range tests {
		field := "username"
		if strings.Contains(tt.path, "routes") {
			field = "name"
		}
		for _, size := range []string{"", "&size=1"} {
			t.Run(tt.path+"?tags="+tt.tags+size, func(t *testing.T) {
				got, _ := pageAll(t, e, tt.path+"?tags="+url.QueryEscape(tt.tags)+size, field, tt.tags)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			})
		}
	}

	bad := []struct{ tags, message string }{
		{"", "invalid option (tags: cannot be null)"},
		{"a,b/c", "invalid option (tags: invalid filter syntax)"},
		{"a/b,c", "invalid option (tags: invalid filter syntax)"},
		{"a,,b", "invalid option (tags: invalid filter syntax)"},
		{"a\x01", "invalid option (tags: invalid filter syntax)"},
		{"\xff", "invalid option (tags: invalid filter syntax)"},
	}
	for _, b := range bad {
		t.Run("bad "+b.tags, func(t *testing.T) {
			out := e.must(400, "GET", "/consumers?tags="+url.QueryEscape(b.tags), "", "")
			if out["message"] != b.message || out["code"] != float64(codeInvalidOptions) || out["name"] != "invalid options" {
				t.Fatalf("body %v, want code %d, name \"invalid options\", message %q", out, codeInvalidOptions, b.message)
			}
		})
	}
}

// TestTagFilterScanBudget lists a collection larger than tagScanBudget
// with a filter that matches nothing: the first page stops at the budget
// and answers no entity but a next link, and following it ends the list,
// rather than one request reading the whole collection.
func TestTagFilterScanBudget(t *testing.T) {
	e := newEnv(t)
	// The fixture goes to the store in one transaction (1,050 Admin API
	// POSTs would take seconds); the listing under test goes over HTTP.
	ops := make([]store.Op, 0, tagScanBudget+50)
	for i := range tagScanBudget + 50 {
		name := fmt.Sprintf("u%d", i)
		rec, err := record(&entity.Consumer{ID: uuid.NewString(), Username: &name})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, store.Op{Type: store.OpInsert, Record: rec})
	}
	if err := e.store.Apply(t.Context(), ops, nil); err != nil {
		t.Fatal(err)
	}
	if all, _ := pageAll(t, e, "/consumers?size=1000", "username", ""); len(all) != tagScanBudget+50 {
		t.Fatalf("%d consumers listed without a filter, want %d", len(all), tagScanBudget+50)
	}
	got, sizes := pageAll(t, e, "/consumers?tags=none", "username", "none")
	if len(got) != 0 || len(sizes) != 2 {
		t.Fatalf("%d entities over pages %v, want none over 2 pages (the first cut at %d records read)", len(got), sizes, tagScanBudget)
	}
}

// TestTagsEndpoints lists tags across kinds, as Kong's /tags and
// /tags/{tag}: one row per entity and tag, paged across kinds, ?tags=
// ignored, an invalid tag refused.
func TestTagsEndpoints(t *testing.T) {
	e := newEnv(t)
	c1 := e.must(201, "POST", "/consumers", "application/json", `{"username":"c1","tags":["corp_a","consumer1"]}`)
	c2 := e.must(201, "POST", "/consumers", "application/json", `{"username":"c2","tags":["corp_a","consumer2"]}`)
	e.must(201, "POST", "/consumers", "application/json", `{"username":"untagged"}`)
	svc := e.must(201, "POST", "/services", "application/json", `{"name":"s","host":"up.example","tags":["corp_a"]}`)
	key := e.must(201, "POST", "/consumers/c1/key-auth", "application/json", `{"tags":["k"]}`)

	rows := func(path string) []string {
		t.Helper()
		var out []string
		for next, pages := path, 0; next != ""; pages++ {
			if pages > 20 {
				t.Fatalf("more than 20 pages from %s", path)
			}
			page := e.must(200, "GET", next, "", "")
			for _, d := range page["data"].([]any) {
				r := d.(map[string]any)
				out = append(out, fmt.Sprintf("%s %s %s", r["entity_name"], r["entity_id"], r["tag"]))
			}
			next, _ = page["next"].(string)
		}
		slices.Sort(out)
		return out
	}
	all := []string{
		"consumers " + id(c1) + " consumer1", "consumers " + id(c1) + " corp_a",
		"consumers " + id(c2) + " consumer2", "consumers " + id(c2) + " corp_a",
		"keyauth_credentials " + id(key) + " k", "services " + id(svc) + " corp_a",
	}
	slices.Sort(all)
	corpA := []string{"consumers " + id(c1) + " corp_a", "consumers " + id(c2) + " corp_a", "services " + id(svc) + " corp_a"}
	slices.Sort(corpA)
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/tags", all},
		{"/tags?size=1", all},
		{"/tags?tags=not_a_tag", all},
		{"/tags/corp_a", corpA},
		{"/tags/corp_a?size=1&tags=invalid@tag", corpA},
		{"/tags/nope", nil},
	} {
		if got := rows(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("GET %s: %v, want %v", tt.path, got, tt.want)
		}
	}
	if out := e.must(400, "GET", "/tags/"+url.PathEscape("a,b"), "", ""); out["message"] != "invalid value: a,b" {
		t.Errorf("invalid tag: %v", out)
	}
	for _, off := range []string{"!!", "OTku", "x"} {
		if out := e.must(400, "GET", "/tags?offset="+off, "", ""); out["code"] != float64(codeInvalidOffset) {
			t.Errorf("offset %q: %v, want Kong's invalid offset", off, out)
		}
	}
}
