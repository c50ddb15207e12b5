package dashboards

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes the YAML file at path into v, rejecting unknown fields.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// datasourcesFile is Grafana's datasource provisioning format.
type datasourcesFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string `yaml:"name"`
		Type      string `yaml:"type"`
		UID       string `yaml:"uid"`
		Access    string `yaml:"access"`
		URL       string `yaml:"url"`
		IsDefault bool   `yaml:"isDefault"`
		Editable  bool   `yaml:"editable"`
		JSONData  struct {
			TimeInterval string `yaml:"timeInterval"`
			HTTPMethod   string `yaml:"httpMethod"`
		} `yaml:"jsonData"`
	} `yaml:"datasources"`
}

// providersFile is Grafana's dashboard provisioning format.
type providersFile struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// prometheusFile is the subset of Prometheus' configuration Sluice uses.
type prometheusFile struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// rulesFile is Prometheus' rule file format.
type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestProvisioningDatasources(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("provisioning", "datasources", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no datasource provisioning files (%v)", err)
	}
	uids := map[string]bool{}
	for _, p := range paths {
		var f datasourcesFile
		decodeStrict(t, p, &f)
		if f.APIVersion != 1 {
			t.Errorf("%s: apiVersion = %d, want 1", p, f.APIVersion)
		}
		for _, d := range f.Datasources {
			uids[d.UID] = true
			if d.Type == "prometheus" && d.URL != "http://prometheus:9090" {
				t.Errorf("%s: %s url = %q, want the compose service http://prometheus:9090", p, d.Name, d.URL)
			}
		}
	}
	if !uids[DatasourceUID] {
		t.Errorf("no provisioned datasource has uid %q, which every dashboard uses", DatasourceUID)
	}
}

func TestProvisioningDashboards(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("provisioning", "dashboards", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboard provisioning files (%v)", err)
	}
	for _, p := range paths {
		var f providersFile
		decodeStrict(t, p, &f)
		if f.APIVersion != 1 || len(f.Providers) == 0 {
			t.Errorf("%s: apiVersion %d with %d providers", p, f.APIVersion, len(f.Providers))
		}
		for _, pr := range f.Providers {
			if pr.Type != "file" || pr.Options.Path != grafanaDashboardsPath {
				t.Errorf("%s: provider %s reads %s %q, want file %q", p, pr.Name, pr.Type, pr.Options.Path, grafanaDashboardsPath)
			}
		}
	}
}

func TestPrometheusConfig(t *testing.T) {
	var f prometheusFile
	decodeStrict(t, "prometheus.yml", &f)
	if len(f.ScrapeConfigs) != 1 || f.ScrapeConfigs[0].JobName != "sluice" {
		t.Fatalf("scrape configs = %+v, want one job sluice", f.ScrapeConfigs)
	}
	if mp := f.ScrapeConfigs[0].MetricsPath; mp != "" && mp != "/metrics" {
		t.Errorf("metrics_path = %q", mp)
	}
	for _, r := range f.RuleFiles {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("rule file %s: %v", r, err)
		}
	}
	if !slices.Contains(f.RuleFiles, "alerts.yml") {
		t.Errorf("rule_files = %v, want alerts.yml", f.RuleFiles)
	}
}

func TestAlertRules(t *testing.T) {
	var f rulesFile
	decodeStrict(t, "alerts.yml", &f)
	want := []string{"SluiceInvalidationLagHigh", "SluiceDatastoreUnreachable", "SluiceCacheHitRatioCollapse", "SluiceClusterPollErrors"}
	var got []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			got = append(got, r.Alert)
			t.Run(r.Alert, func(t *testing.T) {
				if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.For == "" {
					t.Errorf("rule needs severity, summary and for: %+v", r)
				}
				names, err := MetricNames(r.Expr)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					if _, ok := Family(n, Families()); !ok {
						t.Errorf("uses %s, which Sluice does not export", n)
					}
				}
				if !strings.Contains(r.Expr, `job="sluice"`) {
					t.Errorf("expr does not select job=\"sluice\": %s", r.Expr)
				}
			})
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("alerts = %v, want %v", got, want)
	}
}
