package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
)

// Secrets the security test gives the node: each must never show up in
// logs, error bodies, GET /, /metrics or exported spans.
const (
	pgSecret     = "pgPass-6c1f0e5b9d"
	adminSecret  = "adminTok-93b2c7aa41"
	credSecret   = "credKey-d84f21c6e0"
	wrongCredKey = "wrongKey-5e7a1b3f08"
)

// secureNode is one real node with admin_token, a pg_password, small proxy
// limits and tracing exported to a real OTLP/HTTP collector.
type secureNode struct {
	*harness.Node
	dir   string
	stop  func()
	spans *capture
	seen  *capture // what the upstream received
}

// capture collects request dumps, safe for concurrent use.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) add(b []byte) { c.mu.Lock(); c.buf.Write(b); c.buf.WriteByte('\n'); c.mu.Unlock() }
func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func startSecureNode(t *testing.T) *secureNode {
	t.Helper()
	s := &secureNode{dir: t.TempDir(), spans: &capture{}, seen: &capture{}}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.spans.add(b)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var dump bytes.Buffer
		fmt.Fprintf(&dump, "%s %s\n", r.Method, r.URL)
		_ = r.Header.Write(&dump)
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(&dump, "body=%q cl=%d te=%v\n", body, r.ContentLength, r.TransferEncoding)
		s.seen.add(dump.Bytes())
		_, _ = w.Write([]byte("upstream ok"))
	}))
	t.Cleanup(up.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := harness.Start(ctx, harness.Options{Binary: sluiceBinary(t), Nodes: 1, Dir: s.dir, Env: []string{
		"SLUICE_ADMIN_TOKEN=" + adminSecret, "SLUICE_PG_PASSWORD=" + pgSecret, "SLUICE_LOG_LEVEL=debug",
		"SLUICE_PROXY_MAX_HEADER_SIZE=8k", "SLUICE_CLIENT_MAX_BODY_SIZE=1k",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL, "OTEL_BSP_SCHEDULE_DELAY=50",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	s.Node, s.stop = c.Nodes[0], c.Stop
	s.must(t, "POST", "/services", form("name", "sec", "url", up.URL), 201)
	s.must(t, "POST", "/services/sec/routes", form("name", "sec", "paths[]", "/sec"), 201)
	s.must(t, "POST", "/services", form("name", "open", "url", up.URL), 201)
	s.must(t, "POST", "/services/open/routes", form("name", "open", "paths[]", "/open"), 201)
	s.must(t, "POST", "/consumers", form("username", "alice"), 201)
	s.must(t, "POST", "/consumers/alice/key-auth", form("key", credSecret), 201)
	s.must(t, "POST", "/routes/sec/plugins", form("name", "key-auth"), 201)
	return s
}

// admin sends an Admin API request with token (none when empty).
func (s *secureNode) admin(t *testing.T, method, path string, body url.Values, token string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, s.AdminURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Kong-Admin-Token", token)
	}
	return send(t, req)
}

func (s *secureNode) must(t *testing.T, method, path string, body url.Values, want int) []byte {
	t.Helper()
	status, b := s.admin(t, method, path, body, adminSecret)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	return b
}

func send(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// rawRequest writes req as is to addr ("http://host:port") and returns the
// status line of the first answer.
func rawRequest(t *testing.T, base, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to %q: %v", req, err)
	}
	return strings.TrimSpace(line)
}

func TestAdminToken(t *testing.T) {
	s := startSecureNode(t)
	for _, c := range []struct {
		name  string
		set   func(h http.Header)
		want  int
		path  string
		unath bool
	}{
		{"no token", func(http.Header) {}, 401, "/services", true},
		{"wrong token", func(h http.Header) { h.Set("Kong-Admin-Token", adminSecret+"x") }, 401, "/services", true},
		{"no token on /metrics", func(http.Header) {}, 401, "/metrics", true},
		{"no token on /openapi.json", func(http.Header) {}, 401, "/openapi.json", true},
		{"Kong-Admin-Token", func(h http.Header) { h.Set("Kong-Admin-Token", adminSecret) }, 200, "/services", false},
		{"bearer", func(h http.Header) { h.Set("Authorization", "Bearer "+adminSecret) }, 200, "/services", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.AdminURL+c.path, nil)
			c.set(req.Header)
			status, body := send(t, req)
			if status != c.want {
				t.Fatalf("status %d, want %d: %s", status, c.want, body)
			}
			if c.unath && strings.TrimSpace(string(body)) != `{"message":"Unauthorized"}` {
				t.Fatalf("body %s", body)
			}
		})
	}
}

// TestProxyRequestHardening sends raw requests to a real node's proxy.
func TestProxyRequestHardening(t *testing.T) {
	s := startSecureNode(t)
	t.Run("differing Content-Length headers are refused", func(t *testing.T) {
		got := rawRequest(t, s.ProxyURL, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"+
			"Content-Length: 30\r\n\r\nabc")
		if !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("answer %q, want 400", got)
		}
	})
	t.Run("invalid Content-Length is refused", func(t *testing.T) {
		got := rawRequest(t, s.ProxyURL, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabc")
		if !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("answer %q, want 400", got)
		}
	})
	t.Run("stacked Transfer-Encoding is refused", func(t *testing.T) {
		got := rawRequest(t, s.ProxyURL, "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"+
			"\r\n0\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 501") && !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("answer %q, want 400 or 501", got)
		}
	})
	t.Run("Content-Length with chunked: refused, nothing smuggled", func(t *testing.T) {
		// RFC 9112 6.1: a message with both may be a smuggling attempt; the
		// proxy answers 400 and closes, and nothing reaches the upstream.
		before := s.seen.String()
		got := rawRequest(t, s.ProxyURL, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n"+
			"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("answer %q, want 400", got)
		}
		if seen := s.seen.String(); seen != before {
			t.Fatalf("upstream received %q, want nothing", seen[len(before):])
		}
	})
	t.Run("hop-by-hop headers named in Connection are stripped", func(t *testing.T) {
		got := rawRequest(t, s.ProxyURL, "GET /open/hop HTTP/1.1\r\nHost: x\r\nConnection: X-Secret, close\r\n"+
			"X-Secret: v\r\nX-Kept: k\r\nKeep-Alive: timeout=5\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("answer %q, want 200", got)
		}
		seen := s.seen.String()
		i := strings.Index(seen, "GET /hop")
		if i < 0 {
			t.Fatalf("upstream did not see the request:\n%s", seen)
		}
		req := seen[i:]
		if !strings.Contains(req, "X-Kept: k") || strings.Contains(req, "X-Secret") || strings.Contains(req, "Keep-Alive") {
			t.Fatalf("upstream saw hop-by-hop headers:\n%s", req)
		}
	})
	t.Run("headers beyond proxy_max_header_size answer 431", func(t *testing.T) {
		big := strings.Repeat("a", 16<<10)
		got := rawRequest(t, s.ProxyURL, "GET /open HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 431") {
			t.Fatalf("answer %q, want 431", got)
		}
	})
	t.Run("bodies beyond client_max_body_size answer 413", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.ProxyURL+"/open", strings.NewReader(strings.Repeat("b", 2<<10)))
		if status, body := send(t, req); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413: %s", status, body)
		}
	})
	t.Run("admin bodies beyond 1 MiB answer 413", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.AdminURL+"/services", strings.NewReader(
			`{"name":"`+strings.Repeat("n", 2<<20)+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Kong-Admin-Token", adminSecret)
		if status, body := send(t, req); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413: %s", status, body)
		}
	})
}

// TestSecretsNeverLeak exercises the Admin API (including its errors) and
// the proxy (including key-auth failures), then looks for every secret in
// the node's log, the answers, GET /, both /metrics and the exported spans.
func TestSecretsNeverLeak(t *testing.T) {
	s := startSecureNode(t)
	var answers bytes.Buffer
	record := func(status int, body []byte) { fmt.Fprintf(&answers, "%d %s\n", status, body) }
	record(s.admin(t, "GET", "/services", nil, ""))
	record(s.admin(t, "GET", "/services", nil, adminSecret+"-wrong"))
	record(s.admin(t, "POST", "/services", form("host", "h", "port", "notaport"), adminSecret))
	record(s.admin(t, "POST", "/consumers", form("username", "alice"), adminSecret))
	record(s.admin(t, "GET", "/nowhere", nil, adminSecret))
	record(s.admin(t, "DELETE", "/status", nil, adminSecret))
	record(s.admin(t, "POST", "/plugins", form("name", "key-auth", "config.key_names", "5", "config.bogus", "x"), adminSecret))
	record(s.admin(t, "GET", "/services?offset=bogus", nil, adminSecret))
	for _, h := range []http.Header{
		{"Apikey": {credSecret}}, {"Apikey": {wrongCredKey}}, {},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.ProxyURL+"/sec/x", nil)
		req.Header = h
		record(send(t, req))
	}
	for _, q := range []string{credSecret, wrongCredKey} {
		req, _ := http.NewRequest(http.MethodGet, s.ProxyURL+"/sec/q?apikey="+q, nil)
		record(send(t, req))
	}
	if !strings.Contains(answers.String(), "upstream ok") || !strings.Contains(answers.String(), "401") {
		t.Fatalf("the exercise did not reach the upstream and the key-auth refusal:\n%s", answers.String())
	}
	info := s.must(t, "GET", "/", nil, 200)
	if !strings.Contains(string(info), `"admin_token":"******"`) || !strings.Contains(string(info), `"pg_password":"******"`) {
		t.Errorf("GET / does not show the secrets masked: %s", info)
	}
	adminMetrics := s.must(t, "GET", "/metrics", nil, 200)
	_, statusMetrics := send(t, mustRequest(t, s.StatusURL+"/metrics"))
	s.stop() // flushes the log and the span batcher
	logs, err := os.ReadFile(filepath.Join(s.dir, s.Name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "node started") {
		t.Fatalf("log has no start line:\n%s", logs)
	}
	if s.spans.String() == "" {
		t.Fatal("no spans were exported: the span check would prove nothing")
	}
	places := map[string]string{"log": string(logs), "answers": answers.String(), "GET /": string(info),
		"admin /metrics": string(adminMetrics), "status /metrics": string(statusMetrics), "spans": s.spans.String()}
	for name, text := range places {
		for _, secret := range []string{pgSecret, adminSecret, credSecret, wrongCredKey} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains secret %q", name, secret)
			}
		}
	}
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
