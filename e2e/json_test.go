package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
)

// jsonField returns a top-level string field of a JSON object.
func jsonField(t *testing.T, body []byte, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %q: %v", body, err)
	}
	v, ok := m[field]
	if !ok {
		t.Fatalf("no %q in %s", field, body)
	}
	return fmt.Sprint(v)
}
