package router

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"root", "/", "/"},
		{"already normal", "/a/b/c", "/a/b/c"},
		{"trailing slash kept", "/a/b/", "/a/b/"},
		{"decode unreserved", "/%41%7a%2D%2e%5F%7E%30", "/Az-._~0"},
		{"uppercase reserved", "/a%2fb%3a", "/a%2Fb%3A"},
		{"reserved upper kept", "/a%2Fb", "/a%2Fb"},
		{"space stays encoded", "/a%20b", "/a%20b"},
		{"lone percent", "/a%", "/a%"},
		{"bad triplet", "/a%zz%4", "/a%zz%4"},
		{"percent before triplet", "/%%41", "/%A"},
		{"decoding forms a triplet", "/%%61b", "/%AB"},
		{"merge slashes", "//a///b//", "/a/b/"},
		{"dot segment", "/a/./b", "/a/b"},
		{"dot dot segment", "/a/b/../c", "/a/c"},
		{"dot dot above root", "/../../a", "/a"},
		{"only dot dot", "/..", "/"},
		{"trailing dot", "/a/b/.", "/a/b/"},
		{"trailing dot dot", "/a/b/..", "/a/"},
		{"encoded dots", "/a/%2E%2e/b", "/b"},
		{"dots inside names kept", "/a../.b/...", "/a../.b/..."},
		{"slashes then dots", "/a//..//b", "/b"},
		{"relative", "a/../b", "b"},
		{"relative dot", "./", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Normalize(tt.in)
			if got != tt.want {
				t.Fatalf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := Normalize(got); again != got {
				t.Errorf("Normalize(%q) = %q, not idempotent", got, again)
			}
		})
	}
}

func TestNormalizeNoAlloc(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/users/42", "/a%2Fb/c/", "/%zz"} {
		t.Run(p, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { _ = Normalize(p) }); n != 0 {
				t.Errorf("Normalize(%q) allocates %v times, want 0", p, n)
			}
		})
	}
}
