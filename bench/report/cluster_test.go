package report

import (
	"strings"
	"testing"
)

func TestClusterMarkdown(t *testing.T) {
	yes := true
	c := &Cluster{File: "c.yaml", RunID: "r1", Writer: "a", Rounds: 2, ProbeIntervalMS: 10, MaxProbeRPSPerNode: 400,
		ByChange: map[string]Window{"route-created": {Latency: Latency{P50: 250}, Samples: 2}},
		All:      Window{Latency: Latency{P50: 250}, Samples: 2, Missed: 8},
		Nodes: []ClusterNode{
			{Name: "a", Writer: true, Probe: "yes", Window: Window{Samples: 8}},
			{Name: "b", Probe: "yes", Window: Window{Latency: Latency{P50: 250}, Samples: 8},
				Inside: &Inside{LagMS: Latency{P50: 260}, LagEvents: 12, KSD: 0.1, KSCritical: 0.96, Agrees: &yes}},
			{Name: "c", Probe: "yes", Window: Window{Missed: 8}, Lagging: true, LagNote: "8 of 8 changes unseen", InsideNote: "its polls failed"},
			{Name: "d", Database: "off", Probe: "no: DB-less"},
		},
		Load: &ClusterLoad{URL: "http://lb/", Rate: 10, Requests: 10, ByStatus: map[string]int{"200": 9, "transport error": 1}, Errors: 1},
	}
	md := clusterMarkdown(c, true)
	for _, want := range []string{
		"| a (writer) | 8 | 0 |",
		"| b | 8 | 0 | 250 |",
		"| yes (D=0.10, bound 0.96) |",
		"| c | 0 | 8 | - | - | - | - |",
		"**LAGGING**: 8 of 8 changes unseen",
		"| d | - | - | - | - | - | - |",
		"| d | - | - | off | 0s | 0s | - | no: DB-less |",
		"- c: its polls failed",
		"| 200: 9, transport error: 1 |",
		"| all | 2 | 8 | 250 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the cluster section lacks %q:\n%s", want, md)
		}
	}
	c.NotProbed = "no node's Admin API took the canary writes"
	if md := clusterMarkdown(c, false); !strings.Contains(md, "Consistency was not probed: no node's Admin API") || strings.Contains(md, "Window per node") {
		t.Errorf("not probed:\n%s", md)
	}
}
