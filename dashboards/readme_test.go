package dashboards

import (
	"os"
	"strings"
	"testing"
)

// TestReadme checks that README.md lists every panel and metric family.
func TestReadme(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, f := range generated(t) {
		for _, p := range layout(t, f.JSON) {
			if p.Type != "row" && !strings.Contains(readme, "| "+p.Title+" |") {
				t.Errorf("README.md does not list panel %q of %s", p.Title, f.Name)
			}
		}
	}
	for _, fam := range Families() {
		if !strings.Contains(readme, "`"+fam+"`") {
			t.Errorf("README.md does not mention %s", fam)
		}
	}
}
