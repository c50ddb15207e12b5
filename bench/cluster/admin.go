package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// admin is one node's Admin API.
type admin struct {
	node   string
	base   string
	token  string
	client *http.Client
}

// statusError is an Admin API answer other than the one wanted.
type statusError struct {
	method, url string
	status      int
	body        string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.url, e.status, e.body)
}

// refused reports whether err is the Admin API refusing writes: no or a
// read-only token (401, 403) or a DB-less node (405, Kong's answer to a
// write without a database).
func refused(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusForbidden || se.status == http.StatusMethodNotAllowed)
}

// call sends a request with an optional JSON body and checks the status.
func (a *admin) call(ctx context.Context, method, path string, body any, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Kong-Admin-Token", a.token)
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.node, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", a.node, method, path, err)
	}
	if resp.StatusCode != want {
		return out, &statusError{method: method, url: a.base + path, status: resp.StatusCode, body: strings.TrimSpace(string(truncate(out, 300)))}
	}
	return out, nil
}

// create POSTs body to path and returns the new entity's id.
func (a *admin) create(ctx context.Context, path string, body map[string]any) (string, error) {
	out, err := a.call(ctx, http.MethodPost, path, body, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var e struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &e); err != nil || e.ID == "" {
		return "", fmt.Errorf("%s: POST %s: no id in %s", a.node, path, truncate(out, 200))
	}
	return e.ID, nil
}

// del deletes path; a missing entity is not an error (Kong answers 204).
func (a *admin) del(ctx context.Context, path string) error {
	_, err := a.call(ctx, http.MethodDelete, path, nil, http.StatusNoContent)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusNotFound {
		return nil
	}
	return err
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return append(b[:n:n], "..."...)
	}
	return b
}
