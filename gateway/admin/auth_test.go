package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequireToken(t *testing.T) {
	h := New(Options{Store: newStore(t), Plugins: testRegistry()})
	srv := httptest.NewServer(RequireToken("s3cr3t-token", h))
	t.Cleanup(srv.Close)
	cases := []struct {
		name, header, value string
		want                int
	}{
		{"none", "", "", http.StatusUnauthorized},
		{"kong header", "Kong-Admin-Token", "s3cr3t-token", http.StatusOK},
		{"bearer", "Authorization", "Bearer s3cr3t-token", http.StatusOK},
		{"bearer lower case scheme", "Authorization", "bearer s3cr3t-token", http.StatusOK},
		{"wrong token", "Kong-Admin-Token", "s3cr3t-tokeN", http.StatusUnauthorized},
		{"prefix of token", "Authorization", "Bearer s3cr3t", http.StatusUnauthorized},
		{"basic scheme", "Authorization", "Basic s3cr3t-token", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/services", nil)
			if c.header != "" {
				req.Header.Set(c.header, c.value)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == http.StatusUnauthorized {
				var body map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatal(err)
				}
				if len(body) != 1 || body["message"] != "Unauthorized" {
					t.Fatalf("body %v, want {\"message\":\"Unauthorized\"}", body)
				}
			}
		})
	}
}

func TestRequireTokenEmptyIsOpen(t *testing.T) {
	h := New(Options{Store: newStore(t)})
	if got := RequireToken("", h); got != h {
		t.Fatal("an empty token must leave the handler unguarded")
	}
}
