package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/bench/report"
)

// nodeInfo is the part of GET / the bench reads. Kong and Sluice answer
// the same shape; Kong writes durations as numbers of seconds, and so does
// Sluice.
type nodeInfo struct {
	Tagline string `json:"tagline"`
	// Version is Kong's release; a Sluice node reports there the Kong
	// release whose Admin API it follows and its own in SluiceVersion.
	Version       string         `json:"version"`
	SluiceVersion string         `json:"sluice_version"`
	Configuration map[string]any `json:"configuration"`
}

// discover reads a node's product, version, database and invalidation
// settings from GET / into n. It never changes anything.
func discover(ctx context.Context, a *admin, n *report.ClusterNode) error {
	body, err := a.call(ctx, http.MethodGet, "/", nil, http.StatusOK)
	if err != nil {
		return err
	}
	return parseInfo(body, n)
}

// parseInfo fills n from a GET / body.
func parseInfo(body []byte, n *report.ClusterNode) error {
	var info nodeInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("GET / on %s: not Kong's node information: %w", n.Name, err)
	}
	switch t := strings.ToLower(info.Tagline); {
	case strings.Contains(t, "sluice"):
		n.Product = "sluice"
	case strings.Contains(t, "kong"):
		n.Product = "kong"
	default:
		n.Product = info.Tagline
	}
	n.Version = info.Version
	if n.Product == "sluice" && info.SluiceVersion != "" {
		n.Version = info.SluiceVersion
	}
	cfg := info.Configuration
	n.Database, _ = cfg["database"].(string)
	n.DBUpdateFrequencyS = seconds(cfg["db_update_frequency"])
	n.DBUpdatePropagationS = seconds(cfg["db_update_propagation"])
	if v, ok := cfg["db_update_push"].(bool); ok {
		v = v && n.Database == "postgres" // push takes effect on PostgreSQL only
		n.Push = &v
	}
	return nil
}

// dbless reports whether the node runs without a database (Kong's
// database=off): its entities come from a declarative file, so canary
// writes cannot reach it through a datastore.
func dbless(n *report.ClusterNode) bool { return n.Database == "off" }

func seconds(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return 0
}
