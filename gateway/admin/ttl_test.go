package admin

import (
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeyAuthTTL: a credential's ttl counts down in every answer, a PATCH
// that sets ttl restarts it, one that does not keeps it, and an expired
// credential is no longer shown (GET 404, left out of lists).
func TestKeyAuthTTL(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	h := New(Options{Store: newStore(t), Plugins: testRegistry()}).(*handler)
	h.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, srv: srv}
	const js = "application/json"

	e.must(201, "POST", "/consumers", js, `{"username":"alice"}`)
	tests := []struct {
		name         string
		advance      int64
		method, path string
		body         string
		status       int
		ttl          any // the answer's ttl; nil for none
	}{
		{"created", 0, "POST", "/consumers/alice/key-auth", `{"key":"k1","ttl":10}`, 201, 10.0},
		{"counts down", 3, "GET", "/consumers/alice/key-auth/k1", "", 200, 7.0},
		{"by key-auths", 0, "GET", "/key-auths/k1", "", 200, 7.0},
		{"PATCH without ttl keeps it", 1, "PATCH", "/key-auths/k1", `{"tags":["t"]}`, 200, 6.0},
		{"PATCH with ttl restarts it", 0, "PATCH", "/key-auths/k1", `{"ttl":20}`, 200, 20.0},
		{"after the first ttl", 15, "GET", "/key-auths/k1", "", 200, 5.0},
		{"expired", 5, "GET", "/key-auths/k1", "", 404, nil},
		{"no ttl", 0, "POST", "/consumers/alice/key-auth", `{"key":"k2"}`, 201, nil},
		{"no ttl never expires", 1 << 30, "GET", "/key-auths/k2", "", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Add(tt.advance)
			e.t = t
			got := e.must(tt.status, tt.method, tt.path, js, tt.body)
			if tt.status < 300 && got["ttl"] != tt.ttl {
				t.Errorf("ttl = %v, want %v", got["ttl"], tt.ttl)
			}
			if _, ok := got["expires_at"]; ok {
				t.Errorf("the stored expiry is shown: %v", got)
			}
		})
	}
	e.t = t
	list := e.must(200, "GET", "/consumers/alice/key-auth", "", "")
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["key"] != "k2" {
		t.Errorf("list = %v, want only the credential without ttl", data)
	}
}
