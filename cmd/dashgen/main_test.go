package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-gw/sluice/dashboards"
)

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	files, err := dashboards.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(dir, f.Name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, f.JSON) {
				t.Error("written file differs from the generator output")
			}
		})
	}
}
