package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// namedUpstream answers every request with its name.
func namedUpstream(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(name))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestChangesApplyIncrementallyOnOtherNodes: every kind of change made on
// node A (route create, rename, path change and delete, a service's host,
// plugin add and delete) reaches node B's proxy, and B applies each from
// its event alone: its count of full route-table rebuilds stays at what
// start-up cost, and its count of applied changes grows.
func TestChangesApplyIncrementallyOnOtherNodes(t *testing.T) {
	up, other := namedUpstream(t, "first"), namedUpstream(t, "second")
	c := startCluster(t, 2, "SLUICE_DB_UPDATE_FREQUENCY=0.2")
	a, b := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()
	const limit = 5 * time.Second
	body := func(path string) (int, string) {
		s, bd, _ := b.Get(ctx, path, nil)
		return s, string(bd)
	}

	rebuildsAtStart := metric(t, b.StatusURL, "sluice_router_rebuilds_total")
	appliedAtStart := metric(t, b.StatusURL, `sluice_snapshot_changes_applied_total{snapshot="routes"}`)
	if rebuildsAtStart < 1 {
		t.Fatalf("node B counts %v route table rebuilds after start, want at least the start-up one", rebuildsAtStart)
	}

	admin(t, a, "POST", "/services", form("name", "svc", "url", up.URL), 201)
	admin(t, a, "POST", "/services/svc/routes", form("name", "r", "paths[]", "/one"), 201)
	waitFor(t, limit, "new route on B", func() bool { return status(b, "/one") == 200 })

	admin(t, a, "PATCH", "/routes/r", form("paths[]", "/two"), 200)
	waitFor(t, limit, "route path change on B", func() bool { return status(b, "/two") == 200 && status(b, "/one") == 404 })

	admin(t, a, "PATCH", "/routes/r", form("name", "renamed"), 200)
	waitFor(t, limit, "route rename on B", func() bool {
		return metric(t, b.StatusURL, `sluice_snapshot_changes_applied_total{snapshot="routes"}`)-appliedAtStart >= 4 // service, route, path, name
	})

	// The service moves to another upstream: B's route follows it.
	admin(t, a, "PATCH", "/services/svc", form("url", other.URL), 200)
	waitFor(t, limit, "service host change on B", func() bool {
		s, bd := body("/two")
		return s == 200 && bd == "second"
	})

	plugin := jsonField(t, admin(t, a, "POST", "/services/svc/plugins",
		form("name", "request-termination", "config.status_code", "418", "config.message", "m"), 201), "id")
	waitFor(t, limit, "plugin add on B", func() bool { return status(b, "/two") == 418 })
	admin(t, a, "DELETE", "/plugins/"+plugin, nil, 204)
	waitFor(t, limit, "plugin delete on B", func() bool { return status(b, "/two") == 200 })

	admin(t, a, "DELETE", "/routes/renamed", nil, 204)
	waitFor(t, limit, "route delete on B", func() bool { return status(b, "/two") == 404 })

	if got := metric(t, b.StatusURL, "sluice_router_rebuilds_total"); got != rebuildsAtStart {
		s, bd := body("/two")
		t.Errorf("node B rebuilt its route table %v times for single changes (from %v to %v), want none (last answer %d %q)",
			got-rebuildsAtStart, rebuildsAtStart, got, s, bd)
	}
	if got := metric(t, b.StatusURL, `sluice_snapshot_changes_applied_total{snapshot="plugins"}`); got < 2 {
		t.Errorf("node B applied %v plugin changes, want at least 2 (add, delete)", got)
	}
	if got := metric(t, b.StatusURL, `sluice_snapshot_apply_duration_seconds_count{snapshot="routes"}`); got < 1 {
		t.Errorf("sluice_snapshot_apply_duration_seconds has no route applies on node B")
	}
}
