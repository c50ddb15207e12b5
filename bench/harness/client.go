package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client is shared by every node's helpers: keep-alive, bounded.
var client = &http.Client{Timeout: 10 * time.Second}

// Admin sends an Admin API request with a form body (nil for none) and
// returns the status and body.
func (n *Node) Admin(ctx context.Context, method, path string, form url.Values) (int, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, n.AdminURL+path, body)
	if err != nil {
		return 0, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return do(req)
}

// MustAdmin is Admin that turns an unexpected status into an error.
func (n *Node) MustAdmin(ctx context.Context, method, path string, form url.Values, want int) ([]byte, error) {
	status, body, err := n.Admin(ctx, method, path, form)
	if err != nil {
		return nil, err
	}
	if status != want {
		return body, fmt.Errorf("%s %s on %s: status %d, want %d: %s", method, path, n.Name, status, want, body)
	}
	return body, nil
}

// Get sends a proxy request and returns the status and body.
func (n *Node) Get(ctx context.Context, path string, header http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.ProxyURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(req)
}

func do(req *http.Request) (int, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// PostConfig replaces a DB-less node's configuration with doc (Kong's
// declarative format, JSON or YAML) through POST /config.
func (n *Node) PostConfig(ctx context.Context, doc []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.AdminURL+"/config", bytes.NewReader(doc))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	status, body, err := do(req)
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return fmt.Errorf("POST /config on %s: status %d, want 201: %.300s", n.Name, status, body)
	}
	return nil
}
