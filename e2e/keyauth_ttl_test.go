package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestKeyAuthTTLOnEveryNode: a key-auth credential created with a ttl
// authenticates on every node until it expires, then is refused by every
// node (401), even though each node cached it while it was valid; the
// Admin API shows its ttl counting down and then no longer shows it.
func TestKeyAuthTTLOnEveryNode(t *testing.T) {
	up := upstream(t)
	c := startCluster(t, 2, "SLUICE_DB_UPDATE_FREQUENCY=0.2")
	a, b := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()

	admin(t, a, "POST", "/services", form("name", "s", "url", up.URL), 201)
	admin(t, a, "POST", "/services/s/routes", form("paths[]", "/ttl"), 201)
	admin(t, a, "POST", "/services/s/plugins", form("name", "key-auth", "config.realm", "sluice-test"), 201)
	admin(t, a, "POST", "/consumers", form("username", "alice"), 201)
	const ttl = 3
	created := time.Now()
	cred := admin(t, a, "POST", "/consumers/alice/key-auth", form("key", "short-lived", "ttl", "3"), 201)
	// Whole seconds left, rounded down as Kong's: 2 once any time has passed.
	if got := jsonNumber(t, cred, "ttl"); got != ttl-1 && got != ttl {
		t.Fatalf("created credential ttl = %v, want %d or %d", got, ttl-1, ttl)
	}
	if strings.Contains(string(cred), "expires_at") {
		t.Fatalf("credential shows its stored expiry: %s", cred)
	}
	key := http.Header{"apikey": {"short-lived"}}
	for _, n := range c.Nodes {
		waitFor(t, 5*time.Second, n.Name+" accepts the key", func() bool {
			status, _, err := n.Get(ctx, "/ttl", key)
			return err == nil && status == 200
		})
	}

	time.Sleep(time.Until(created.Add(1100 * time.Millisecond)))
	left := jsonNumber(t, admin(t, b, "GET", "/consumers/alice/key-auth/short-lived", nil, 200), "ttl")
	if left < 1 || left >= ttl-1 {
		t.Errorf("ttl on node B after 1.1 s = %v, want it counting down from %d", left, ttl)
	}

	time.Sleep(time.Until(created.Add(ttl*time.Second + 100*time.Millisecond)))
	for _, n := range c.Nodes {
		status, body, err := n.Get(ctx, "/ttl", key)
		if err != nil || status != 401 {
			t.Errorf("%s: expired key answered %d %s, %v; want 401", n.Name, status, body, err)
		}
	}
	status, _, err := a.Get(ctx, "/ttl", nil)
	if err != nil || status != 401 {
		t.Errorf("no key: %d, %v; want 401", status, err)
	}
	admin(t, a, "GET", "/consumers/alice/key-auth/short-lived", nil, 404)
	if list := admin(t, b, "GET", "/consumers/alice/key-auth", nil, 200); !strings.Contains(string(list), `"data":[]`) {
		t.Errorf("expired credential still listed: %s", list)
	}
}

func jsonNumber(t *testing.T, body []byte, field string) float64 {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	n, ok := m[field].(float64)
	if !ok {
		t.Fatalf("%s: no number %q", body, field)
	}
	return n
}
