package router

import (
	"regexp"
	"testing"
)

func TestLiteralPrefix(t *testing.T) {
	tests := []struct {
		name, pattern, want string
	}{
		{"plain", `/foo`, "/foo"},
		{"class stops", `/re7/items/\d+$`, "/re7/items/"},
		{"capture kept", `/users/(?P<id>\d+)`, "/users/"},
		{"literal capture continues", `/(v1)/x\d`, "/v1/x"},
		{"alternation factored", `/foo|/bar`, "/"},
		{"alternation", `foo|bar`, ""},
		{"case folding stops", `(?i)/foo`, ""},
		{"star stops", `/files/.*\.txt$`, "/files/"},
		{"optional stops", `/a?b`, "/"},
		{"empty", ``, ""},
		{"unicode", `/ü/\d`, "/ü/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := regexp.MustCompile(`^(?:` + tt.pattern + `)`)
			if got := literalPrefix(re); got != tt.want {
				t.Errorf("literalPrefix(%q) = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}
