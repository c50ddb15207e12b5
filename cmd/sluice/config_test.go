package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCommands runs sluice config on a real SQLite datastore: parse
// checks a file, db_import writes it (twice: the second changes nothing),
// db_export reads it back, and the export imports into another datastore.
func TestConfigCommands(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kong.yaml")
	const conf = `_format_version: "3.0"
services:
- name: s1
  url: http://example.com
  routes:
  - name: r1
    paths: [/a]
consumers:
- username: alice
  keyauth_credentials:
  - key: k1
  basicauth_credentials:
  - {username: alice-b, password: pw}
  jwt_secrets:
  - {key: alice-iss}
plugins:
- name: key-auth
  service: s1
`
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	use := func(db string) {
		t.Setenv("SLUICE_DATABASE", "sqlite")
		t.Setenv("SLUICE_SQLITE_PATH", filepath.Join(dir, db))
		if err := migrations(ctx, []string{"up"}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := configCmd(ctx, args, &out); err != nil {
			t.Fatalf("sluice config %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	use("a.db")
	want := "0 certificates, 1 services, 1 routes, 1 consumers, 1 plugins, 1 keyauth_credentials, 1 basicauth_credentials, 1 jwt_secrets"
	if got := run("parse", file); !strings.Contains(got, "parse successful: "+want) {
		t.Errorf("parse: %q", got)
	}
	if got := run("db_import", file); !strings.Contains(got, "import successful: "+want) {
		t.Errorf("db_import: %q", got)
	}
	run("db_import", file)
	exported := run("db_export", "-")
	for _, s := range []string{"_format_version: \"3.0\"", "name: s1", "key: k1", "username: alice", "paths:",
		"username: alice-b", "key: alice-iss", "_transform: false"} {
		if !strings.Contains(exported, s) {
			t.Errorf("export lacks %q:\n%s", s, exported)
		}
	}
	export := filepath.Join(dir, "export.yaml")
	run("db_export", export)

	use("b.db")
	run("db_import", export)
	if again := run("db_export", "-"); again != exported {
		t.Errorf("export of the imported export differs:\n%s\n---\n%s", exported, again)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("_format_version: \"3.0\"\nservices:\n- {name: x}\n- {name: y, host: h, port: 99999}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := configCmd(ctx, []string{"parse", bad}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "services[0]: host: required field missing") ||
		!strings.Contains(err.Error(), "services[1]: port: value should be between 0 and 65535") {
		t.Errorf("parse of a bad file: %v, want both services' errors", err)
	}
	if err := configCmd(ctx, []string{"nope", bad}, &bytes.Buffer{}); err == nil {
		t.Error("unknown subcommand accepted")
	}
}
