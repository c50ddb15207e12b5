package config

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzFileLines feeds arbitrary configuration files to the parser: it must
// never panic, and an error about a "key = value" line names that key.
func FuzzFileLines(f *testing.F) {
	for _, s := range []string{
		"db_update_frequency = 0.5\n",
		"mem_cache_size = 128m # comment\n",
		"db_cache_neg_ttl = none\n",
		"cassandra_contact_points = a, b,,c\n",
		"log_level = loud\n",
		"nokey\n",
		"pg_password = s3cret\nadmin_token = t\n",
		"db_update_frequency = NaN\n",
		"mem_cache_size = 99999999999999999g\n",
		"= value\n",
		"proxy_max_header_size = 8k\nclient_max_body_size = 0\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		c := Default()
		err := c.readFile(strings.NewReader(data), "fuzz.conf")
		if err == nil {
			_ = c.validate()
			_ = c.Public()
			return
		}
		if !strings.Contains(err.Error(), "fuzz.conf") {
			t.Fatalf("error does not name the file: %v", err)
		}
		if line, ok := singleSetting(data); ok {
			key, _, _ := strings.Cut(line, "=")
			if key = strings.TrimSpace(key); !namesKey(err.Error(), key) {
				t.Fatalf("error for line %q does not name key %q: %v", line, key, err)
			}
		}
	})
}

// FuzzSet sets arbitrary keys to arbitrary values, as a file line or an
// environment variable would: never a panic; an error names the key (and
// the environment variable); a secret's value never appears in an error or
// in Public.
func FuzzSet(f *testing.F) {
	for _, kv := range [][2]string{
		{"db_update_frequency", "5"}, {"db_update_frequency", "-1"}, {"db_update_frequency", "1e400"},
		{"db_cache_neg_ttl", "NONE"}, {"pg_port", "99999999999999999999"}, {"pg_ssl", "maybe"},
		{"mem_cache_size", "-1k"}, {"database", "mysql"}, {"admin_token", "t0ken"},
		{"pg_password", "p@ss=word"}, {"no_such_key", "x"}, {"DATABASE", "sqlite"}, {"", ""},
		{"proxy_max_header_size", "1g"}, {"client_max_body_size", "x"},
	} {
		f.Add(kv[0], kv[1])
	}
	secret := map[string]bool{}
	for _, fl := range fields() {
		secret[fl.key] = fl.secret
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		c := Default()
		if err := c.Set(key, value); err != nil {
			if !namesKey(err.Error(), key) {
				t.Fatalf("Set(%q, %q): error does not name the key: %v", key, value, err)
			}
			if secret[key] && value != "" && strings.Contains(err.Error(), value) {
				t.Fatalf("Set(%q): error shows the secret: %v", key, err)
			}
		}
		if secret[key] && value != "" {
			if got := c.Public()[key]; got != "******" {
				t.Fatalf("Public()[%q] = %v, want it masked", key, got)
			}
		}
		if strings.ContainsAny(key, "=\x00") || key == "" {
			return
		}
		name := "SLUICE_" + strings.ToUpper(key)
		err := Default().readEnv([]string{name + "=" + value})
		if err != nil && !strings.Contains(err.Error(), "environment variable "+name) {
			t.Fatalf("env %s=%q: error does not name the variable: %v", name, value, err)
		}
	})
}

// singleSetting returns the only non-blank, non-comment line of data.
func singleSetting(data string) (string, bool) {
	var found []string
	for _, l := range strings.Split(data, "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		if strings.TrimSpace(l) != "" {
			found = append(found, strings.TrimSpace(l))
		}
	}
	if len(found) != 1 || !strings.Contains(found[0], "=") || strings.ContainsAny(data, "\r") {
		return "", false
	}
	return found[0], true
}

func namesKey(msg, key string) bool {
	return strings.Contains(msg, key) || strings.Contains(msg, strconv.Quote(key))
}
