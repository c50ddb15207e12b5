package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

// TestBasicAuthAndJWTAcrossNodes: basic-auth and jwt credentials written on
// node A authenticate on node B once the cluster event arrives, although B
// had cached their absence; a changed password and a deleted credential are
// refused on B after the event. On SQLite (polled events) and PostgreSQL
// (pushed events).
func TestBasicAuthAndJWTAcrossNodes(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testAuthAcrossNodes(t, startCluster(t, 2, "SLUICE_DB_UPDATE_FREQUENCY=0.2"))
	})
	t.Run("postgres", func(t *testing.T) {
		c, _, _ := startPGCluster(t, 2, "SLUICE_DB_UPDATE_FREQUENCY=0.2")
		testAuthAcrossNodes(t, c)
	})
}

func testAuthAcrossNodes(t *testing.T, c *harness.Cluster) {
	up := upstream(t)
	a, b := c.Nodes[0], c.Nodes[1]
	const limit = 5 * time.Second // 0.2 s polls, on a loaded 2-core machine

	admin(t, a, "POST", "/services", form("name", "s", "url", up.URL), 201)
	admin(t, a, "POST", "/services/s/routes", form("name", "basic", "paths[]", "/basic"), 201)
	admin(t, a, "POST", "/services/s/routes", form("name", "jwt", "paths[]", "/jwt"), 201)
	admin(t, a, "POST", "/routes/basic/plugins", form("name", "basic-auth", "config.realm", "e2e"), 201)
	admin(t, a, "POST", "/routes/jwt/plugins", form("name", "jwt", "config.claims_to_verify", "exp", "config.cookie_names", "tok"), 201)
	admin(t, a, "POST", "/consumers", form("username", "alice"), 201)

	basic := func(pass string) http.Header {
		return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice-b:"+pass))}}
	}
	token := http.Header{"Authorization": {"Bearer " + hs256(`{"iss":"alice-iss","exp":`+
		strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)+`}`, "alice-secret")}}
	// B caches that neither credential exists.
	waitStatus(t, b, "/basic", basic("pw"), 401, limit)
	waitStatus(t, b, "/jwt", token, 401, limit)
	for range 3 { // cached negatively now
		for path, h := range map[string]http.Header{"/basic": basic("pw"), "/jwt": token} {
			if status, _, _ := b.Get(context.Background(), path, h); status != 401 {
				t.Fatalf("%s: unknown credential answered %d, want 401", path, status)
			}
		}
	}

	admin(t, a, "POST", "/consumers/alice/basic-auth", form("username", "alice-b", "password", "pw"), 201)
	admin(t, a, "POST", "/consumers/alice/jwt", form("key", "alice-iss", "secret", "alice-secret"), 201)
	took := waitStatus(t, b, "/basic", basic("pw"), 200, limit)
	t.Logf("basic-auth credential created on A accepted by B after %v", took)
	took = waitStatus(t, b, "/jwt", token, 200, limit)
	t.Logf("jwt secret created on A accepted by B after %v", took)
	metrics := string(admin(t, b, "GET", "/metrics", nil, 200))
	for _, kind := range []string{"basicauth_credentials", "jwt_secrets"} {
		series := `sluice_cache_negative_hits_total{backend="freecache",entity="` + kind + `"}`
		if !strings.Contains(metrics, series) || strings.Contains(metrics, series+" 0\n") {
			t.Errorf("node B's metrics show no negative hits for %s:\n%s", kind, grep(metrics, "negative_hits"))
		}
	}
	if status, _, _ := b.Get(context.Background(), "/basic", basic("wrong")); status != 401 {
		t.Errorf("a wrong password answered %d, want 401", status)
	}
	// The other places the fasthttp engine must show the plugins.
	raw := token.Get("Authorization")[len("Bearer "):]
	for name, req := range map[string]struct {
		path string
		h    http.Header
	}{
		"Proxy-Authorization": {"/basic", http.Header{"Proxy-Authorization": basic("pw")["Authorization"]}},
		"jwt query argument":  {"/jwt?jwt=" + raw, nil},
		"jwt cookie":          {"/jwt", http.Header{"Cookie": {"a=b; tok=" + raw}}},
	} {
		if status, body, err := b.Get(context.Background(), req.path, req.h); err != nil || status != 200 {
			t.Errorf("%s: %d %s, %v; want 200", name, status, body, err)
		}
	}

	admin(t, a, "PATCH", "/basic-auths/alice-b", form("password", "new"), 200)
	waitStatus(t, b, "/basic", basic("pw"), 401, limit)
	waitStatus(t, b, "/basic", basic("new"), 200, limit)

	admin(t, a, "DELETE", "/consumers/alice/basic-auth/alice-b", nil, 204)
	admin(t, a, "DELETE", "/jwts/alice-iss", nil, 204)
	took = waitStatus(t, b, "/basic", basic("new"), 401, limit)
	t.Logf("basic-auth credential deleted on A refused by B after %v", took)
	took = waitStatus(t, b, "/jwt", token, 401, limit)
	t.Logf("jwt secret deleted on A refused by B after %v", took)
}

// waitStatus waits until n answers path with status, and returns how long
// it took.
func waitStatus(t *testing.T, n *harness.Node, path string, h http.Header, status int, limit time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, limit, n.Name+" answers "+path+" "+http.StatusText(status), func() bool {
		got, _, err := n.Get(context.Background(), path, h)
		return err == nil && got == status
	})
}

// hs256 returns a JWT of claims signed with secret by HS256.
func hs256(claims, secret string) string {
	enc := base64.RawURLEncoding.EncodeToString
	signed := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signed))
	return signed + "." + enc(m.Sum(nil))
}
