package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

var update = flag.Bool("update", false, "rewrite the committed dashboards in grafana/ from the generator")

// generated returns the generator output, failing the test on error.
func generated(t *testing.T) []File {
	t.Helper()
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("Generate returned %d dashboards, want 3", len(files))
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, f := range generated(t) {
		t.Run(f.Name, func(t *testing.T) {
			path := filepath.Join("grafana", f.Name)
			if *update {
				if err := os.WriteFile(path, f.JSON, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			committed, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(committed, f.JSON) {
				t.Errorf("%s differs from the generator output; run `go run ./cmd/dashgen` or `go test ./dashboards -update`", path)
			}
		})
	}
}

func TestNoStrayDashboards(t *testing.T) {
	committed, err := filepath.Glob(filepath.Join("grafana", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range generated(t) {
		want[filepath.Join("grafana", f.Name)] = true
	}
	for _, c := range committed {
		if !want[c] {
			t.Errorf("%s is not produced by the generator; delete it", c)
		}
	}
}

func TestStrictSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, f := range generated(t) {
		t.Run(f.Name, func(t *testing.T) {
			var d dashboard.Dashboard
			if err := sdkError(d.UnmarshalJSONStrict(f.JSON)); err != nil {
				t.Fatalf("strict unmarshal: %v", err)
			}
			if err := sdkError(d.Validate()); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if d.Uid == nil || !strings.HasPrefix(*d.Uid, "sluice-") {
				t.Errorf("uid = %v, want sluice-*", d.Uid)
			}
			// The strict decoder must reject what Grafana would ignore.
			bogus := bytes.Replace(f.JSON, []byte(`"panels": [`), []byte(`"bogusField": 1, "panels": [`), 1)
			if err := sdkError((&dashboard.Dashboard{}).UnmarshalJSONStrict(bogus)); err == nil {
				t.Error("strict unmarshal accepted an unknown field")
			}
		})
	}
}

// sdkError returns nil for the empty cog.BuildErrors that the SDK returns as
// a non-nil error interface on success.
func sdkError(err error) error {
	if errs, ok := err.(cog.BuildErrors); ok && len(errs) == 0 {
		return nil
	}
	return err
}

// layoutPanel is the part of a panel the layout checks read.
type layoutPanel struct {
	ID         *uint32 `json:"id"`
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr       string `json:"expr"`
		RefID      string `json:"refId"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []layoutPanel `json:"panels"`
}

// layout decodes the panels of a dashboard, flattening rows.
func layout(t *testing.T, raw []byte) []layoutPanel {
	t.Helper()
	var d struct {
		Panels     []layoutPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Templating.List) == 0 || d.Templating.List[0].Name != "instance" {
		t.Errorf("first variable is not instance: %+v", d.Templating.List)
	}
	for _, v := range d.Templating.List {
		if v.Datasource.UID != DatasourceUID {
			t.Errorf("variable %s queries datasource %q, want %q", v.Name, v.Datasource.UID, DatasourceUID)
		}
	}
	var flat []layoutPanel
	var walk func([]layoutPanel)
	walk = func(ps []layoutPanel) {
		for _, p := range ps {
			flat = append(flat, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return flat
}

func TestLayout(t *testing.T) {
	for _, f := range generated(t) {
		t.Run(f.Name, func(t *testing.T) {
			panels := layout(t, f.JSON)
			ids := map[uint32]string{}
			for i, p := range panels {
				if p.ID == nil {
					t.Errorf("panel %q has no id", p.Title)
				} else if other, dup := ids[*p.ID]; dup {
					t.Errorf("panels %q and %q share id %d", other, p.Title, *p.ID)
				} else {
					ids[*p.ID] = p.Title
				}
				g := p.GridPos
				if g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
					t.Errorf("panel %q has bad gridPos %+v", p.Title, g)
					continue
				}
				for _, q := range panels[:i] {
					h := q.GridPos
					if h != nil && g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
						t.Errorf("panel %q %+v overlaps %q %+v", p.Title, *g, q.Title, *h)
					}
				}
			}
		})
	}
}

func TestTargets(t *testing.T) {
	families := Families()
	rangeSel := regexp.MustCompile(`\[[^\]]*\]`)
	for _, f := range generated(t) {
		t.Run(f.Name, func(t *testing.T) {
			n := 0
			for _, p := range layout(t, f.JSON) {
				if p.Type == "row" {
					continue
				}
				if p.Datasource == nil || p.Datasource.UID != DatasourceUID {
					t.Errorf("panel %q datasource = %+v, want uid %q", p.Title, p.Datasource, DatasourceUID)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no targets", p.Title)
				}
				for _, q := range p.Targets {
					n++
					if q.Expr == "" || q.RefID == "" {
						t.Errorf("panel %q has a target without expr or refId: %+v", p.Title, q)
					}
					if q.Datasource == nil || q.Datasource.UID != DatasourceUID {
						t.Errorf("panel %q target %s has datasource %+v", p.Title, q.RefID, q.Datasource)
					}
					for _, r := range rangeSel.FindAllString(q.Expr, -1) {
						if r != "[$__rate_interval]" {
							t.Errorf("panel %q uses range %s, want [$__rate_interval]", p.Title, r)
						}
					}
					names, err := MetricNames(Expand(q.Expr))
					if err != nil {
						t.Errorf("panel %q: %v", p.Title, err)
					}
					if len(names) == 0 {
						t.Errorf("panel %q: %q names no metric", p.Title, q.Expr)
					}
					for _, name := range names {
						if _, ok := Family(name, families); !ok {
							t.Errorf("panel %q uses %s, which Sluice does not export", p.Title, name)
						}
					}
				}
			}
			if n < 8 {
				t.Errorf("only %d targets", n)
			}
		})
	}
}

// TestCoverage checks that every exported family appears in some dashboard.
func TestCoverage(t *testing.T) {
	used := map[string]bool{}
	for _, f := range generated(t) {
		for _, p := range layout(t, f.JSON) {
			for _, q := range p.Targets {
				names, err := MetricNames(Expand(q.Expr))
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					fam, _ := Family(n, Families())
					used[fam] = true
				}
			}
		}
	}
	for _, fam := range Families() {
		if !used[fam] {
			t.Errorf("no panel shows %s", fam)
		}
	}
}
