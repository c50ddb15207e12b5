package dashboards

import (
	"os"
	"os/exec"
	"testing"

	"github.com/sluice-gw/sluice/internal/testenv"
)

// promtool returns the path of promtool. Without it the test is skipped,
// except under CI=true where it fails.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool", "apt-get install -y --no-install-recommends prometheus")
	}
	return path
}

func TestPromtool(t *testing.T) {
	bin := promtool(t)
	tests := []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", "alerts.yml"}},
		{"check config", []string{"check", "config", "prometheus.yml"}},
		{"test rules", []string{"test", "rules", "alerts_test.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(bin, tt.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %v: %v\n%s", tt.args, err, out)
			}
		})
	}
}

// TestPromtoolCatchesBrokenRules guards against a promtool invocation that
// cannot fail: a rule file with invalid PromQL must be rejected.
func TestPromtoolCatchesBrokenRules(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	bad := dir + "/bad.yml"
	rules := "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(sluice_cache_hits_total[5m])\n"
	if err := os.WriteFile(bad, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", bad).CombinedOutput(); err == nil {
		t.Fatalf("promtool accepted a broken rule:\n%s", out)
	}
}
