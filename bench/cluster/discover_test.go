package cluster

import (
	"testing"

	"github.com/sluice-gw/sluice/bench/report"
)

// The GET / bodies below are trimmed from real answers: Kong 3.9 in
// DB-less mode and on PostgreSQL, and a Sluice node.
func TestParseInfo(t *testing.T) {
	for _, tc := range []struct {
		name, body          string
		product, db, ver    string
		freq, prop          float64
		push, dbless, known bool
	}{
		{"kong dbless", `{"tagline":"Welcome to kong","version":"3.9.0","configuration":{"database":"off","db_update_frequency":5,"db_update_propagation":0,"role":"traditional"}}`,
			"kong", "off", "3.9.0", 5, 0, false, true, false},
		{"kong postgres", `{"tagline":"Welcome to kong","version":"3.9.0","configuration":{"database":"postgres","db_update_frequency":1,"db_update_propagation":0}}`,
			"kong", "postgres", "3.9.0", 1, 0, false, false, false},
		{"kong cassandra", `{"tagline":"Welcome to kong","version":"2.8.5","configuration":{"database":"cassandra","db_update_frequency":5,"db_update_propagation":2}}`,
			"kong", "cassandra", "2.8.5", 5, 2, false, false, false},
		{"sluice", `{"tagline":"Welcome to sluice","version":"dev","configuration":{"database":"postgres","db_update_frequency":0.5,"db_update_propagation":0,"db_update_push":true}}`,
			"sluice", "postgres", "dev", 0.5, 0, true, false, true},
		{"sluice following kong 3.9.1", `{"tagline":"Welcome to sluice","version":"3.9.1","sluice_version":"1.4.0","configuration":{"database":"sqlite","db_update_frequency":5,"db_update_propagation":0,"db_update_push":true}}`,
			"sluice", "sqlite", "1.4.0", 5, 0, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := report.ClusterNode{Name: "n"}
			if err := parseInfo([]byte(tc.body), &n); err != nil {
				t.Fatal(err)
			}
			if n.Product != tc.product || n.Database != tc.db || n.Version != tc.ver || n.DBUpdateFrequencyS != tc.freq || n.DBUpdatePropagationS != tc.prop {
				t.Errorf("got %+v", n)
			}
			if (n.Push != nil) != tc.known || (n.Push != nil && *n.Push != tc.push) {
				t.Errorf("push = %v, want known=%v push=%v", n.Push, tc.known, tc.push)
			}
			if dbless(&n) != tc.dbless {
				t.Errorf("dbless = %v, want %v", dbless(&n), tc.dbless)
			}
		})
	}
	if err := parseInfo([]byte("<html>"), &report.ClusterNode{Name: "n"}); err == nil {
		t.Error("an HTML page was taken for node information")
	}
}
