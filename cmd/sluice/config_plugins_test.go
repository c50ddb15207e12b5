package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigBundledPlugins: a declarative file with request-transformer,
// http-log and prometheus (nested records, a map, templates) parses and
// imports; a template Sluice cannot render and Lua code are refused with
// the field named.
func TestConfigBundledPlugins(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SLUICE_DATABASE", "sqlite")
	t.Setenv("SLUICE_SQLITE_PATH", filepath.Join(dir, "p.db"))
	ctx := context.Background()
	if err := migrations(ctx, []string{"up"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	write := func(name, conf string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `_format_version: "3.0"
services:
- name: s1
  url: http://example.com
  routes:
  - name: r1
    paths: [/a]
    plugins:
    - name: request-transformer
      config:
        add:
          headers: ["x-from:$(headers.x_client)"]
        replace:
          uri: /b
    - name: http-log
      config:
        http_endpoint: http://logs.example.com/in
        headers: {X-Token: t}
        queue: {max_batch_size: 10}
plugins:
- name: prometheus
  config: {status_code_metrics: true, per_consumer: true}
`)
	var out bytes.Buffer
	if err := configCmd(ctx, []string{"db_import", good}, &out); err != nil || !strings.Contains(out.String(), "3 plugins") {
		t.Fatalf("db_import: %v %q", err, out.String())
	}
	out.Reset()
	if err := configCmd(ctx, []string{"db_export", "-"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"max_batch_size: 10", "max_entries: 10000", "uri: /b", "x-from:$(headers.x_client)", "status_code_metrics: true"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("export lacks %q:\n%s", s, out.String())
		}
	}

	bad := write("bad.yaml", `_format_version: "3.0"
plugins:
- name: request-transformer
  config: {add: {headers: ["x:$(uri_captures.id)"]}}
- name: http-log
  config: {http_endpoint: http://x, custom_fields_by_lua: {a: "return 1"}}
`)
	err := configCmd(ctx, []string{"parse", bad}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "add") || !strings.Contains(err.Error(), "custom_fields_by_lua") {
		t.Errorf("parse of a file with a Lua template and Lua code: %v", err)
	}
}
