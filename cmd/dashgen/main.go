// Command dashgen regenerates Sluice's Grafana dashboards.
//
//	go run ./cmd/dashgen [-out dashboards/grafana]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluice-gw/sluice/dashboards"
)

func main() {
	out := flag.String("out", filepath.Join("dashboards", "grafana"), "directory to write the dashboard JSON files to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
}

// run writes every generated dashboard into dir, creating it if needed.
func run(dir string) error {
	files, err := dashboards.Generate()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := os.WriteFile(path, f.JSON, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}
