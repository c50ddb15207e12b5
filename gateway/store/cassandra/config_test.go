package cassandra

import (
	"context"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func TestConfigDefaults(t *testing.T) {
	s, err := Config{}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.Keyspace != "sluice" || s.Port != 9042 || s.Timeout != 5*time.Second || s.read != gocql.One ||
		s.write != gocql.One || s.ContactPoints[0] != "127.0.0.1" || s.EventTTL != 24*time.Hour {
		t.Fatalf("defaults = %+v", s)
	}
	if want := "{'class': 'SimpleStrategy', 'replication_factor': 1}"; s.replication != want {
		t.Fatalf("replication = %s, want %s", s.replication, want)
	}
}

func TestConfigValid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		repl string
	}{
		{"network topology", Config{ReplStrategy: "NetworkTopologyStrategy", DataCenters: "dc1:2, dc2:3"},
			"{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 3}"},
		{"simple factor 3", Config{ReplFactor: 3, ReadConsistency: "local_quorum", WriteConsistency: "QUORUM"},
			"{'class': 'SimpleStrategy', 'replication_factor': 3}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.cfg.validate()
			if err != nil || s.replication != tt.repl {
				t.Fatalf("validate = %q, %v; want %q", s.replication, err, tt.repl)
			}
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error: the key and the allowed values
	}{
		{"read consistency", Config{ReadConsistency: "SERIAL"}, []string{"cassandra_read_consistency", "LOCAL_QUORUM"}},
		{"write consistency", Config{WriteConsistency: "most"}, []string{"cassandra_write_consistency", "ONE"}},
		{"strategy", Config{ReplStrategy: "Simple"}, []string{"cassandra_repl_strategy", "SimpleStrategy or NetworkTopologyStrategy"}},
		{"factor", Config{ReplFactor: -1}, []string{"cassandra_repl_factor", "1 or more"}},
		{"data centers missing", Config{ReplStrategy: "NetworkTopologyStrategy"}, []string{"cassandra_data_centers", "dc1:2,dc2:3"}},
		{"data center factor", Config{ReplStrategy: "NetworkTopologyStrategy", DataCenters: "dc1:x"}, []string{"cassandra_data_centers", `"dc1:x"`}},
		{"data center duplicate", Config{ReplStrategy: "NetworkTopologyStrategy", DataCenters: "dc1:1,dc1:2"}, []string{"cassandra_data_centers", "unique"}},
		{"data center quote", Config{ReplStrategy: "NetworkTopologyStrategy", DataCenters: "d'c:1"}, []string{"cassandra_data_centers"}},
		{"keyspace", Config{Keyspace: `x"; DROP`}, []string{"cassandra_keyspace", "letter"}},
		{"port", Config{Port: 70000}, []string{"cassandra_port", "1 to 65535"}},
		{"timeout", Config{Timeout: -time.Second}, []string{"cassandra_timeout", "positive"}},
		{"contact point", Config{ContactPoints: []string{" "}}, []string{"cassandra_contact_points"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.cfg)
			if err == nil {
				t.Fatal("Open succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
