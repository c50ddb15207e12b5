package basicauth

import (
	"encoding/base64"
	"strings"
)

// parseBasic reads the username and password of an Authorization value as
// Kong does: the first "Basic" (either case of its B and b only) followed
// by base64 of "user:password". Leading colons of the decoded text are
// skipped and the password ends at a newline, as Kong's patterns
// "[Bb]asic\s*(.+)" and "([^:]+):(.*)" read them. ok is false when no
// username and password can be read.
func parseBasic(v string) (user, pass string, ok bool) {
	i := strings.Index(v, "Basic")
	if j := strings.Index(v, "basic"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return "", "", false
	}
	enc := strings.TrimLeft(v[i+len("Basic"):], " \t\r\n\f\v")
	if enc == "" {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return "", "", false
		}
	}
	user, pass, ok = strings.Cut(strings.TrimLeft(string(raw), ":"), ":")
	if !ok {
		return "", "", false
	}
	pass, _, _ = strings.Cut(pass, "\n")
	return user, pass, true
}
