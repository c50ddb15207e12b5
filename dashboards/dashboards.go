// Package dashboards generates Sluice's Grafana dashboards and reads the
// PromQL queries back out of any dashboard file, so that tests can check them
// statically and against a live Prometheus.
//
// The generated JSON lives in dashboards/grafana and is regenerated with
// `go run ./cmd/dashgen`. Grafana and Prometheus configuration for the compose
// stack (provisioning, prometheus.yml, alerts.yml) lives next to it.
package dashboards

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// DatasourceUID is the uid of the provisioned Prometheus datasource that every
// generated panel, target and variable queries.
const DatasourceUID = "prometheus"

// File is one generated dashboard: the file name it is committed under in
// dashboards/grafana and its JSON.
type File struct {
	Name string
	JSON []byte
}

// Generate builds every Sluice dashboard and returns them in a fixed order as
// indented JSON ending in a newline. The output is deterministic, so it can be
// compared byte for byte with the committed files.
func Generate() ([]File, error) {
	builders := []struct {
		name  string
		build func() (dashboard.Dashboard, error)
	}{
		{"gateway.json", Gateway},
		{"cache.json", Cache},
		{"cluster.json", Cluster},
	}
	files := make([]File, 0, len(builders))
	for _, b := range builders {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("dashboards: cannot build %s: %w", b.name, err)
		}
		out, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboards: cannot marshal %s: %w", b.name, err)
		}
		files = append(files, File{Name: b.name, JSON: append(out, '\n')})
	}
	return files, nil
}
